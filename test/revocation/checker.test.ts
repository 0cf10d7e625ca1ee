import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RevocationChecker } from '../../src/revocation/checker.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import type { Authority } from '../support/pki.js';
import { crlServer, leafWithCrl, makeCa, signCrl } from './support.js';

const HOUR = 3_600_000;
let ca: { root: Authority; intermediate: Authority };
let server: Awaited<ReturnType<typeof crlServer>>;
let checkers: RevocationChecker[] = [];

function checker(clock = new FakeClock(Date.now()), options = {}) {
  const c = new RevocationChecker({ clock, ...options });
  checkers.push(c);
  return { c, clock };
}

beforeAll(async () => {
  ca = await makeCa();
  server = await crlServer();
});
afterAll(() => server.close());
afterEach(() => {
  for (const c of checkers) c.close();
  checkers = [];
});

describe('RevocationChecker', () => {
  it('fetches a CRL once and keeps it until its nextUpdate, then asks again', async () => {
    const leaf = await leafWithCrl(ca.intermediate, [server.url('/keep.crl')]);
    server.set('/keep.crl', await signCrl(ca.intermediate, { nextUpdate: new Date(Date.now() + HOUR) }));
    const { c, clock } = checker();
    const first = await c.check(leaf.certificate, ca.intermediate.certificate);
    expect(first).toMatchObject({ status: 'good', url: server.url('/keep.crl') });
    expect(first!.checkAgainAt).toBeGreaterThan(clock.now() + HOUR - 60_000);
    await c.check(leaf.certificate, ca.intermediate.certificate);
    expect(server.hits('/keep.crl')).toBe(1);
    server.set(
      '/keep.crl',
      await signCrl(ca.intermediate, { revoked: [{ serial: leaf.certificate.info.serialNumber }] }),
    );
    clock.advance(HOUR + 1000);
    expect(await c.check(leaf.certificate, ca.intermediate.certificate)).toMatchObject({ status: 'revoked' });
    expect(server.hits('/keep.crl')).toBe(2);
  });

  it('one fetch for many certificates asking at once', async () => {
    server.set('/shared.crl', await signCrl(ca.intermediate));
    const leaves = await Promise.all(
      Array.from({ length: 5 }, () => leafWithCrl(ca.intermediate, [server.url('/shared.crl')])),
    );
    const { c } = checker();
    const verdicts = await Promise.all(
      leaves.map((l) => c.check(l.certificate, ca.intermediate.certificate)),
    );
    expect(verdicts.map((v) => v?.status)).toEqual(Array(5).fill('good'));
    expect(server.hits('/shared.crl')).toBe(1);
  });

  it('a forged CRL is never kept: refused, and the genuine one that follows is used', async () => {
    const leaf = await leafWithCrl(ca.intermediate, [server.url('/forged.crl')]);
    server.set(
      '/forged.crl',
      await signCrl(ca.intermediate, {
        signer: ca.root,
        revoked: [{ serial: leaf.certificate.info.serialNumber }],
      }),
    );
    const { c } = checker();
    await expect(c.check(leaf.certificate, ca.intermediate.certificate)).rejects.toMatchObject({
      code: 'CRL_INVALID',
    });
    server.set('/forged.crl', await signCrl(ca.intermediate));
    expect(await c.check(leaf.certificate, ca.intermediate.certificate)).toMatchObject({ status: 'good' });
  });

  it('when the CRL host fails, the last genuine CRL keeps answering (and still says revoked once stale)', async () => {
    const leaf = await leafWithCrl(ca.intermediate, [server.url('/flaky.crl')]);
    server.set(
      '/flaky.crl',
      await signCrl(ca.intermediate, {
        nextUpdate: new Date(Date.now() + HOUR),
        revoked: [{ serial: leaf.certificate.info.serialNumber }],
      }),
    );
    const { c, clock } = checker();
    expect((await c.check(leaf.certificate, ca.intermediate.certificate))?.status).toBe('revoked');
    server.set('/flaky.crl', 'down', 503);
    clock.advance(2 * HOUR);
    const later = await c.check(leaf.certificate, ca.intermediate.certificate);
    expect(later?.status).toBe('revoked');
    expect(later!.checkAgainAt).toBe(clock.now() + 300_000);
  });

  it('tries the next distribution point when one fails; CRL_UNAVAILABLE when none answers', async () => {
    const leaf = await leafWithCrl(ca.intermediate, [server.url('/missing.crl'), server.url('/second.crl')]);
    server.set('/second.crl', await signCrl(ca.intermediate));
    const { c } = checker();
    expect(await c.check(leaf.certificate, ca.intermediate.certificate)).toMatchObject({
      status: 'good',
      url: server.url('/second.crl'),
    });
    const none = await leafWithCrl(ca.intermediate, [server.url('/gone.crl')]);
    await expect(c.check(none.certificate, ca.intermediate.certificate)).rejects.toMatchObject({
      code: 'CRL_UNAVAILABLE',
    });
  });

  it('refuses a CRL larger than maxBytes', async () => {
    const leaf = await leafWithCrl(ca.intermediate, [server.url('/huge.crl')]);
    server.set('/huge.crl', new Uint8Array(70_000));
    const { c } = checker(undefined, { maxBytes: 65_536 });
    await expect(c.check(leaf.certificate, ca.intermediate.certificate)).rejects.toMatchObject({
      code: 'CRL_UNAVAILABLE',
    });
  });

  it('null for a certificate that names no CRL', async () => {
    const leaf = await leafWithCrl(ca.intermediate, []);
    expect(await checker().c.check(leaf.certificate, ca.intermediate.certificate)).toBeNull();
  });
});
