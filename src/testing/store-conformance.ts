/**
 * The `Store` conformance suite: one call proves a store keeps the contract in `store/store.ts`.
 *
 * ```ts
 * // my-store.test.ts
 * import { runStoreConformance } from 'certkeeper/testing';
 * await runStoreConformance('RedisStore', async () => {
 *   const prefix = `test-${crypto.randomUUID()}`;
 *   const encryption = { keys: [testKey] }; // or 'none': shared stores refuse to run without either
 *   return {
 *     store: new RedisStore({ url, prefix, encryption }),
 *     second: () => new RedisStore({ url, prefix, encryption }), // another replica on the same data
 *     interruptWatch: () => killWatchConnection(prefix), // optional: the resync test
 *     cleanup: () => dropPrefix(prefix),
 *   };
 * });
 * ```
 *
 * It registers vitest tests, so call it at the top level of a test file, with `await`: vitest is
 * loaded with a dynamic `import()` so that `certkeeper/testing` can also be loaded (for
 * `FakeClock` and friends) where vitest is not installed, and from CommonJS.
 *
 * The parts, one file each under `./store-conformance/`: values and listing, locks, fenced
 * writes, change notification (`watch`, for stores that have it) and sealed records.
 */
import type { TestContext } from 'vitest';
import type { Store } from '../store/store.js';
import { fencingTests } from './store-conformance/fencing.js';
import { type Kit, LONG, type StoreUnderTest, sleep } from './store-conformance/kit.js';
import { lockTests } from './store-conformance/locks.js';
import { sealingTests } from './store-conformance/sealing.js';
import { valueTests } from './store-conformance/values.js';
import { watchTests } from './store-conformance/watch.js';

export type { StoreUnderTest } from './store-conformance/kit.js';

/** Called before every test. */
export type StoreFactory = () => StoreUnderTest | Promise<StoreUnderTest>;

/** Options of `runStoreConformance`. */
export interface StoreConformanceOptions {
  /** Lease used by the takeover and renewal tests. Default 300 ms; raise it for slow backends. */
  shortTtlMs?: number;
  /** Timeout of each test. Default 10 000 ms. */
  timeoutMs?: number;
}

export async function runStoreConformance(
  name: string,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, beforeEach, afterEach } = await import('vitest');
  const short = options.shortTtlMs ?? 300;
  const timeout = options.timeoutMs ?? 10_000;

  describe(`Store conformance: ${name}`, () => {
    let sut: StoreUnderTest;
    let opened: Store[] = [];

    beforeEach(async () => {
      sut = await factory();
      opened = [sut.store];
    });

    afterEach(async () => {
      for (const store of opened) await store.close().catch(() => {});
      await sut?.cleanup?.();
    });

    async function second(context: TestContext): Promise<Store> {
      if (!sut.second) context.skip('the factory has no second(): two-client tests skipped');
      const store = await sut.second!();
      opened.push(store);
      return store;
    }

    const kit: Kit = {
      expect,
      test: (title, body) => it(title, body, timeout),
      sut: () => sut,
      second,
      other: async (context) => (sut.second ? second(context) : sut.store),
      async rejectsWith(run, code) {
        const outcome = await Promise.resolve()
          .then(run)
          .then(
            (value) => ({ resolved: value }),
            (error: unknown) => ({ code: (error as { code?: unknown })?.code, error }),
          );
        expect(outcome, `expected a rejection with code ${code}`).toMatchObject({ code });
      },
      async until(check, what) {
        // Leaves a quarter of the test's time to report what did not happen.
        const deadline = Date.now() + (timeout * 3) / 4;
        while (!(await check())) {
          if (Date.now() > deadline) expect.fail(`timed out waiting: ${what}`);
          await sleep(10);
        }
      },
      short,
      slack: Math.max(100, short / 2),
      timeout,
    };

    valueTests(kit);
    lockTests(kit);
    fencingTests(kit);
    watchTests(kit);
    sealingTests(kit);

    kit.test('a closed store rejects every call with STORE_CLOSED', async () => {
      const { store } = sut;
      await store.put('before/close', 'v');
      const lease = (await store.tryLock('closing', { ttlMs: LONG }))!;
      await store.close();
      await kit.rejectsWith(() => store.get('before/close'), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.put('before/close', 'w'), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.put('before/close', 'w', { fence: lease }), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.delete('before/close'), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.delete('before/close', { fence: lease }), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.list(''), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.stat('before/close'), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.lock('closing', { ttlMs: LONG }), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.tryLock('closing', { ttlMs: LONG }), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.renewLock(lease), 'STORE_CLOSED');
      await kit.rejectsWith(() => store.unlock(lease), 'STORE_CLOSED');
      if (store.watch) await kit.rejectsWith(() => store.watch!('', () => {}), 'STORE_CLOSED');
    });
  });
}
