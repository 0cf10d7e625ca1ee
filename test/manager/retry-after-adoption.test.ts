// A retry scheduled by a failed attempt is for the certificate that was served then. When the
// store answers again and reconcile() adopts the certificate it holds, that retry is void: it
// must not order a new certificate (one wasted order per replica per store outage).
import { afterEach, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** `store` whose reads fail with STORE_IO while `down.reads` is true. */
function flaky(store: MemoryStore, down: { reads: boolean }): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'get' && down.reads) {
        return async () => {
          throw new CertkeeperError('STORE_IO', 'store timed out');
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

it('adopting the stored certificate after a store outage at start cancels the retry the outage scheduled', async () => {
  const memory = new MemoryStore();
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const options = {
    issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: ['localhost'] }],
    reconcileIntervalMs: 0,
  };
  const first = createCertificateManager({ ...options, store: memory });
  stops.push(() => first.stop());
  await first.start();
  await first.ready();
  const stored = first.certificate('web')!.serial;
  await first.stop();
  expect(issuer.calls).toBe(1);

  const clock = new FakeClock();
  const down = { reads: true };
  const second = createCertificateManager({ ...options, clock, store: flaky(memory, down) });
  stops.push(() => second.stop());
  const failures: ManagerEvents['renewalFailed'][0][] = [];
  second.on('renewalFailed', (e) => failures.push(e));
  const obtaining: ManagerEvents['obtaining'][0][] = [];
  second.on('obtaining', (e) => obtaining.push(e));
  const failed = nextEvent(second, 'renewalFailed');
  await second.start();
  await clock.advance(0);
  await failed;
  expect(failures[0]!.error.code).toBe('STORE_IO');
  const retryAt = failures[0]!.retryAt.getTime();

  down.reads = false;
  await second.reconcile();
  expect(second.certificate('web')?.serial ?? second.status()[0]!.serial).toBe(stored);
  expect(second.status()[0]).toMatchObject({ serial: stored, failures: 0, lastError: null });
  expect(second.status()[0]!.nextRenewalAt!.getTime()).toBeGreaterThan(retryAt);

  // Past the void retry: nothing is obtained (an attempt emits `obtaining` synchronously when it starts).
  obtaining.length = 0;
  await clock.advance(retryAt - clock.now() + 120_000);
  expect(obtaining).toEqual([]);
  expect(issuer.calls).toBe(1);
});
