// A store that cannot be read is not a damaged store: a replica starting while its shared store
// times out must not order a new certificate (the store still holds a valid one), and must serve
// that one once the store answers again.
import { afterEach, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { LockLease, Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { eventually } from '../support/services.js';

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

it('a replica starting during a read outage orders nothing and serves the stored certificate once reads work', async () => {
  const memory = new MemoryStore();
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const options = {
    issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: ['localhost'] }],
    reconcileIntervalMs: 0,
    renewal: { retryMinMs: 1_000 },
  };
  const first = createCertificateManager({ ...options, store: memory });
  stops.push(() => first.stop());
  await first.start();
  await first.ready();
  const stored = first.certificate('web')!.serial;
  await first.stop();
  expect(issuer.calls).toBe(1);

  const down = { reads: true };
  const second = createCertificateManager({ ...options, store: flaky(memory, down) });
  stops.push(() => second.stop());
  const failures: string[] = [];
  second.on('renewalFailed', (e) => failures.push(e.error.code));
  const invalid: string[] = [];
  second.on('storedInvalid', (e) => invalid.push(e.error.code));
  await second.start();
  await eventually(() => failures.length >= 1 || null, 10_000);
  expect(issuer.calls).toBe(1); // no order while the store cannot be read
  expect(invalid).toEqual([]); // and nothing was called damaged

  down.reads = false;
  await second.ready();
  await eventually(() => second.certificate('web')?.serial === stored || null, 10_000);
  expect(issuer.calls).toBe(1);
});

it('a store that fails only at releasing the issue lock costs nothing: obtained, and no renewalFailed after it', async () => {
  // The store directory deleted while a renewal runs failed the release of the issue lock after
  // the certificate was deployed and announced: `renewalFailed(STORE_IO)` followed `obtained`.
  const memory = new MemoryStore();
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const manager = createCertificateManager({
    store: new Proxy(memory, {
      get(target, prop) {
        if (prop === 'unlock') {
          return async (lease: LockLease) => {
            if (lease.name.startsWith('issue/')) throw new CertkeeperError('STORE_IO', 'the store is gone');
            return target.unlock(lease);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
    issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: ['localhost'] }],
    reconcileIntervalMs: 0,
  });
  stops.push(() => manager.stop());
  const events: string[] = [];
  manager.on('obtained', () => events.push('obtained'));
  manager.on('renewalFailed', (e) => events.push(`renewalFailed:${e.error.code}`));
  await manager.start();
  await manager.ready({ timeoutMs: 10_000 });
  expect(events).toEqual(['obtained']);
  expect(manager.status()[0]).toMatchObject({ failures: 0, lastError: null });
});
