// The manager's watch over its own certificates' CRLs, with a real CRL server on loopback and a
// FakeClock driving the passes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ParsedCertificate } from '../../src/crypto/inspect.js';
import { x509 } from '../../src/crypto/x509.js';
import { RevocationWatch } from '../../src/manager/revocation-watch.js';
import { RevocationChecker } from '../../src/revocation/checker.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { crlServer, leafWithCrl, makeCa, signCrl } from '../revocation/support.js';
import type { Authority } from '../support/pki.js';

const HOUR = 3_600_000;
let ca: { root: Authority; intermediate: Authority };
let server: Awaited<ReturnType<typeof crlServer>>;
const stops: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ca = await makeCa();
  server = await crlServer();
});
afterAll(() => server.close());
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

async function watching(path: string) {
  const leaf = await leafWithCrl(ca.intermediate, [server.url(path)]);
  const clock = new FakeClock(Date.now());
  const checker = new RevocationChecker({ clock });
  const revoked: string[] = [];
  const warnings: string[] = [];
  const served: { id: string; chain: ParsedCertificate[] }[] = [
    { id: 'web', chain: [leaf.certificate, ca.intermediate.certificate] },
  ];
  const logger = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
  const watch = new RevocationWatch(
    checker,
    { served: () => served, revoked: (id, serial, reason) => void revoked.push(`${id} ${serial} ${reason}`) },
    clock,
    logger,
    { minIntervalMs: 60_000, maxIntervalMs: 6 * HOUR },
  );
  stops.push(
    () => watch.stop(),
    () => checker.close(),
  );
  return { leaf, clock, watch, revoked, warnings, served };
}

/** Lets the FakeClock's timers and the fetches they start run. */
async function settle(watch: RevocationWatch) {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
  await watch.check();
}

describe('RevocationWatch', () => {
  it('hands a listed serial to the manager once, with its reason', async () => {
    const w = await watching('/watch-revoked.crl');
    server.set(
      '/watch-revoked.crl',
      await signCrl(ca.intermediate, {
        revoked: [{ serial: w.leaf.certificate.info.serialNumber, reason: x509.X509CrlReason.keyCompromise }],
      }),
    );
    w.watch.start();
    await settle(w.watch);
    expect(w.revoked).toEqual([`web ${w.leaf.certificate.info.serialNumber} keyCompromise`]);
    w.clock.advance(2 * HOUR);
    await settle(w.watch);
    expect(w.revoked).toHaveLength(1);
  });

  it('asks again when the CRL is due, and notices a revocation then', async () => {
    const w = await watching('/watch-later.crl');
    server.set(
      '/watch-later.crl',
      await signCrl(ca.intermediate, { nextUpdate: new Date(Date.now() + HOUR) }),
    );
    w.watch.start();
    await settle(w.watch);
    expect(w.revoked).toEqual([]);
    const hits = server.hits('/watch-later.crl');
    server.set(
      '/watch-later.crl',
      await signCrl(ca.intermediate, { revoked: [{ serial: w.leaf.certificate.info.serialNumber }] }),
    );
    w.clock.advance(30 * 60_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.hits('/watch-later.crl')).toBe(hits);
    w.clock.advance(HOUR);
    await new Promise((r) => setTimeout(r, 100));
    await w.watch.check();
    expect(w.revoked).toEqual([`web ${w.leaf.certificate.info.serialNumber} unspecified`]);
  });

  it('a CRL host that is down or a forged CRL costs nothing: logged, asked again, never "revoked"', async () => {
    const w = await watching('/watch-forged.crl');
    server.set(
      '/watch-forged.crl',
      await signCrl(ca.intermediate, {
        signer: ca.root,
        revoked: [{ serial: w.leaf.certificate.info.serialNumber }],
      }),
    );
    w.watch.start();
    await settle(w.watch);
    expect(w.revoked).toEqual([]);
    expect(w.warnings).toContain('revocation check failed');
    const hits = server.hits('/watch-forged.crl');
    w.clock.advance(60_000);
    await settle(w.watch);
    expect(server.hits('/watch-forged.crl')).toBeGreaterThan(hits);
  });
});
