// The embedded CA dates CRLs and CA certificates by its injected clock (its own, or the one of the
// manager it is bound to), never by the host's: a FakeClock moves them.
import { describe, expect, it } from 'vitest';
import { x509 } from '../../../src/crypto/x509.js';
import { InternalCA } from '../../../src/issuers/internal-ca.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const seconds = (ms: number) => Math.floor(ms / 1000) * 1000;

describe('InternalCA and the injected clock', () => {
  it("crl() and crls() are dated by the CA's clock: nextUpdate one leaf lifetime after its now", async () => {
    const clock = new FakeClock(Date.now() - 3 * DAY);
    const ca = new InternalCA({ store: new MemoryStore(), clock, lifetimeMs: 4 * HOUR });
    const first = new x509.X509Crl(await ca.crl());
    expect(first.thisUpdate.getTime()).toBe(seconds(clock.now()) - MINUTE);
    expect(first.nextUpdate!.getTime()).toBe(seconds(clock.now()) + 4 * HOUR);

    // Time for a refresh, by the fake clock only: the next CRLs start later and end later.
    await clock.advance(3 * HOUR);
    for (const pem of await ca.crls()) {
      const crl = new x509.X509Crl(pem);
      expect(crl.thisUpdate.getTime()).toBe(seconds(clock.now()) - MINUTE);
      expect(crl.nextUpdate!.getTime()).toBe(seconds(clock.now()) + 4 * HOUR);
    }
  });

  it('the CA certificates of a root rotation are dated by the clock (an hour backdated)', async () => {
    const clock = new FakeClock(Date.now() - 10 * DAY);
    const store = new MemoryStore();
    const ca = new InternalCA({ store, clock });
    const made = new x509.X509Certificate(await ca.rootCertificate());
    expect(made.notBefore.getTime()).toBe(seconds(clock.now()) - HOUR);
    await clock.advance(2 * DAY);
    await ca.beginRootRotation();
    await ca.activateNextRoot();
    const next = new x509.X509Certificate(await ca.rootCertificate());
    expect(next.notBefore.getTime()).toBe(seconds(clock.now()) - HOUR);
  });

  it("bind() adopts the manager's clock unless the CA was given one", async () => {
    const managerClock = new FakeClock(Date.now() - 5 * DAY);
    const bound = new InternalCA();
    bound.bind({ store: new MemoryStore(), clock: managerClock });
    expect(bound.clock).toBe(managerClock);
    const crl = new x509.X509Crl(await bound.crl());
    expect(crl.thisUpdate.getTime()).toBe(seconds(managerClock.now()) - MINUTE);

    const own = new FakeClock();
    const kept = new InternalCA({ clock: own });
    kept.bind({ store: new MemoryStore(), clock: managerClock });
    expect(kept.clock).toBe(own);
  });
});
