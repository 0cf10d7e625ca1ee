// Adoption between replicas sharing a store when the new certificate expires at the same second
// as the served one (CAs stamp whole seconds: a forced renewal right after issuance, found by
// test/cluster against Pebble) or earlier (a shorter profile). The stored pointer was committed
// later, so it is the newer certificate and every replica must move to it.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logger.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { readPointer, revertPointer } from '../../src/manager/records.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/index.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { WatchedMemoryStore } from '../support/watched-memory-store.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** Two replicas on one store and one CA, on a clock that only moves when told to. */
function replicas(lifetimeMs = 3_600_000) {
  // 100 ms into a second, so a few ms of clock movement never changes the second.
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000 + 100);
  const store = new MemoryStore();
  const issuer = new SwitchableIssuer({ lifetimeMs });
  const make = () => {
    const m = createCertificateManager({
      store,
      issuer,
      clock,
      logger: quiet,
      certificates: [{ id: 'web', names: ['localhost'] }],
      reconcileIntervalMs: 0,
    });
    stops.push(() => m.stop());
    return m;
  };
  return { clock, store, issuer, a: make(), b: make() };
}

describe('adopting another replica’s certificate', () => {
  it('follows a renewal that expires at the same second as the certificate it replaces', async () => {
    const { clock, a, b } = replicas();
    await a.start();
    await a.renewNow('web');
    await b.start();
    await b.ready();
    const first = a.certificate('web')!;
    expect(b.certificate('web')?.serial).toBe(first.serial);

    clock.set(clock.now() + 10);
    await a.renewNow('web');
    const second = a.certificate('web')!;
    expect(second.serial).not.toBe(first.serial);
    expect(second.notAfter.getTime()).toBe(first.notAfter.getTime());

    await b.reconcile();
    expect(b.certificate('web')?.serial).toBe(second.serial);
  });

  it('a forced renewal waiting on the lock adopts one stored meanwhile instead of ordering again', async () => {
    const { clock, issuer, a, b } = replicas();
    await a.start();
    await a.renewNow('web');
    await b.start();
    await b.ready();
    clock.set(clock.now() + 10);
    const before = issuer.calls;
    // Both asked at the same instant: whichever takes the lock second finds the other's
    // certificate stored after its request, with the same expiry, and adopts it.
    await Promise.all([a.renewNow('web'), b.renewNow('web')]);
    expect(issuer.calls - before).toBe(1);
    expect(b.certificate('web')?.serial).toBe(a.certificate('web')?.serial);
  });

  it('does not go back to a pointer that is older on both counts (reverted by a rollback)', async () => {
    const { clock, store, issuer, a, b } = replicas();
    await a.start();
    await a.renewNow('web');
    const old = (await readPointer(store, issuer.id, 'web'))!;
    await b.start();
    await b.ready();
    clock.set(clock.now() + 2_000);
    await a.renewNow('web');
    await b.reconcile();
    const newer = a.certificate('web')!;
    expect(b.certificate('web')?.serial).toBe(newer.serial);
    // Another replica's failed live check put the previous generation back (still stored).
    await revertPointer(store, issuer.id, 'web', old);
    await b.reconcile();
    expect(b.certificate('web')?.serial).toBe(newer.serial);
  });

  it('a certificate sealed with a key this replica does not have is reported at warn level and not adopted', async () => {
    const store = new MemoryStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const warnings: { message: string; fields: Record<string, unknown> }[] = [];
    const make = (key: Buffer, logger: Logger = quiet) => {
      const m = createCertificateManager({
        store: new EncryptedStore(store, { keys: [key], logger: quiet }),
        issuer,
        logger,
        certificates: [{ id: 'web', names: ['localhost'] }],
        reconcileIntervalMs: 0,
      });
      stops.push(() => m.stop());
      return m;
    };
    const a = make(randomBytes(32));
    const b = make(randomBytes(32), {
      ...quiet,
      warn: (message: string, fields?: Record<string, unknown>) =>
        warnings.push({ message, fields: fields ?? {} }),
    });
    await a.start();
    await a.ready();
    const old = a.certificate('web')!.serial;
    await b.start();
    await b.ready(); // b cannot read a's key: it obtains its own
    await a.renewNow('web');
    await b.reconcile();
    expect(b.certificate('web')?.serial).not.toBe(a.certificate('web')!.serial);
    expect(b.certificate('web')?.serial).not.toBe(old);
    const unusable = warnings.filter((w) => /another replica cannot be used/.test(w.message));
    expect(unusable.length).toBeGreaterThan(0);
    expect(JSON.stringify(unusable)).not.toMatch(/PRIVATE KEY/);
  });

  it('a pointer committed under an id that needs encoding (`*.example.com`) is adopted on its change notification', async () => {
    const store = new WatchedMemoryStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const make = () => {
      const m = createCertificateManager({
        store,
        issuer,
        logger: quiet,
        certificates: [{ names: ['*.example.com'] }, { id: 'Web', names: ['localhost'] }],
        reconcileIntervalMs: 0,
      });
      stops.push(() => m.stop());
      return m;
    };
    const a = make();
    const b = make();
    await a.start();
    await a.ready();
    await b.start();
    await b.ready();
    for (const id of ['*.example.com', 'Web']) {
      const adopted = nextEvent(b, 'adopted', 10_000, (e) => e.id === id);
      await a.renewNow(id);
      expect((await adopted).serial).toBe(a.certificate(id)!.serial);
    }
  });
});
