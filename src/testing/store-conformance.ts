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
 *     cleanup: () => dropPrefix(prefix),
 *   };
 * });
 * ```
 *
 * It registers vitest tests, so call it at the top level of a test file, with `await`: vitest is
 * loaded with a dynamic `import()` so that `certkeeper/testing` can also be loaded (for
 * `FakeClock` and friends) where vitest is not installed, and from CommonJS.
 */
import type { TestContext } from 'vitest';
import type { LockLease, Store } from '../store/store.js';

export interface StoreUnderTest {
  /** A fresh, empty store. The suite closes it after the test. */
  store: Store;
  /** Opens another client of the same backend, as another replica would. Enables the two-client tests. */
  second?: () => Store | Promise<Store>;
  /** Runs after the test, once the stores are closed (drop the directory, database, key prefix). */
  cleanup?: () => void | Promise<void>;
}

/** Called before every test. */
export type StoreFactory = () => StoreUnderTest | Promise<StoreUnderTest>;

export interface StoreConformanceOptions {
  /** Lease used by the takeover and renewal tests. Default 300 ms; raise it for slow backends. */
  shortTtlMs?: number;
  /** Timeout of each test. Default 10 000 ms. */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const LONG = 10_000;

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  if (a === null || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A value that says what it should be: `writer:round:size\n` then one repeated byte. */
function framed(writer: number, round: number, size: number): Uint8Array {
  const header = new TextEncoder().encode(`${writer}:${round}:${size}\n`);
  const bytes = new Uint8Array(size).fill((writer * 31 + round * 7) % 256);
  bytes.set(header);
  return bytes;
}

function isWhole(bytes: Uint8Array | null): boolean {
  if (bytes === null) return false;
  const newline = bytes.indexOf(10);
  const match = /^(\d+):(\d+):(\d+)$/.exec(new TextDecoder().decode(bytes.subarray(0, newline)));
  if (newline < 0 || !match) return false;
  const [writer, round, size] = match.slice(1).map(Number) as [number, number, number];
  return sameBytes(bytes, framed(writer, round, size));
}

/** The hostile keys every method must refuse with INVALID_STORE_KEY. */
const HOSTILE_KEYS: readonly string[] = [
  '',
  '../x',
  'a/../../x',
  '/abs',
  'a//b',
  'a/',
  '.',
  '..',
  'a/./b',
  'a\\b',
  'a\0b',
  'a\nb',
  'a\u001bb',
  'x'.repeat(201),
  'a/'.repeat(600).concat('a'),
];

export async function runStoreConformance(
  name: string,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, beforeEach, afterEach } = await import('vitest');
  const short = options.shortTtlMs ?? 300;
  const timeout = options.timeoutMs ?? 10_000;
  /** Slack for timers and I/O around a lease boundary. */
  const slack = Math.max(100, short / 2);

  async function rejectsWith(run: () => Promise<unknown>, code: string): Promise<void> {
    const outcome = await Promise.resolve()
      .then(run)
      .then(
        (value) => ({ resolved: value }),
        (error: unknown) => ({ code: (error as { code?: unknown })?.code, error }),
      );
    expect(outcome, `expected a rejection with code ${code}`).toMatchObject({ code });
  }

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

    async function secondStore(context: TestContext): Promise<Store> {
      if (!sut.second) context.skip('the factory has no second(): two-client tests skipped');
      const store = await sut.second!();
      opened.push(store);
      return store;
    }

    const test = (title: string, body: (context: TestContext) => Promise<void>) => it(title, body, timeout);

    // ---- values -------------------------------------------------------------------------------

    test('get and stat of a missing key return null, not an error', async () => {
      expect(await sut.store.get('missing/key')).toBeNull();
      expect(await sut.store.stat('missing/key')).toBeNull();
    });

    test('put then get returns the same bytes as a Uint8Array', async () => {
      const value = new Uint8Array([1, 2, 3, 250, 0, 7]);
      await sut.store.put('certificates/a/cert.pem', value);
      const got = await sut.store.get('certificates/a/cert.pem');
      expect(got).toBeInstanceOf(Uint8Array);
      expect(sameBytes(got, value)).toBe(true);
    });

    test('put of a string stores its UTF-8 encoding', async () => {
      const value = 'naïve ☃ 🔐 -----BEGIN CERTIFICATE-----\n';
      await sut.store.put('s', value);
      const got = await sut.store.get('s');
      expect(sameBytes(got, new TextEncoder().encode(value))).toBe(true);
      expect(text(got)).toBe(value);
    });

    test('an empty value round-trips and is not "missing"', async () => {
      await sut.store.put('empty', new Uint8Array(0));
      const got = await sut.store.get('empty');
      expect(got).not.toBeNull();
      expect(got!.byteLength).toBe(0);
      expect((await sut.store.stat('empty'))?.size).toBe(0);
      await sut.store.put('empty-string', '');
      expect((await sut.store.get('empty-string'))?.byteLength).toBe(0);
    });

    test('a 1 MiB value round-trips intact', async () => {
      const value = new Uint8Array(1024 * 1024);
      for (let i = 0; i < value.length; i++) value[i] = (i * 7919) % 251;
      await sut.store.put('big', value);
      expect(sameBytes(await sut.store.get('big'), value)).toBe(true);
    });

    test('binary values with all 256 byte values round-trip', async () => {
      const value = new Uint8Array(512).map((_, i) => i % 256);
      await sut.store.put('binary', value);
      expect(sameBytes(await sut.store.get('binary'), value)).toBe(true);
    });

    test('put overwrites the previous value', async () => {
      await sut.store.put('k', 'first value, the longer one');
      await sut.store.put('k', 'second');
      expect(text(await sut.store.get('k'))).toBe('second');
      expect((await sut.store.stat('k'))?.size).toBe(6);
    });

    test('stored bytes are copies: mutating the input or the result changes nothing', async () => {
      const input = new Uint8Array([1, 2, 3]);
      await sut.store.put('copy', input);
      input[0] = 99;
      const first = await sut.store.get('copy');
      expect(Array.from(first!)).toEqual([1, 2, 3]);
      first![1] = 99;
      expect(Array.from((await sut.store.get('copy'))!)).toEqual([1, 2, 3]);
    });

    test('stat reports key, size in bytes and modification time', async () => {
      const before = Date.now();
      await sut.store.put('dir/stat', 'héllo'); // 6 bytes in UTF-8
      const info = await sut.store.stat('dir/stat');
      expect(info).not.toBeNull();
      expect(info!.key).toBe('dir/stat');
      expect(info!.size).toBe(6);
      expect(info!.modified).toBeInstanceOf(Date);
      // Generous bounds: backends may use their own clock or coarse timestamps.
      expect(info!.modified.getTime()).toBeGreaterThan(before - 5_000);
      expect(info!.modified.getTime()).toBeLessThan(Date.now() + 5_000);
    });

    test('delete returns true for an existing key, then false', async () => {
      await sut.store.put('gone/soon', 'x');
      expect(await sut.store.delete('gone/soon')).toBe(true);
      expect(await sut.store.get('gone/soon')).toBeNull();
      expect(await sut.store.stat('gone/soon')).toBeNull();
      expect(await sut.store.delete('gone/soon')).toBe(false);
      expect(await sut.store.delete('never/existed')).toBe(false);
    });

    // ---- listing ------------------------------------------------------------------------------

    test('list matches the prefix segment-wise: "a" never lists "ab/..."', async () => {
      await sut.store.put('p/a/x', '1');
      await sut.store.put('p/ab/x', '2');
      await sut.store.put('p/a-b', '3');
      expect((await sut.store.list('p/a')).sort()).toEqual(['p/a/x']);
      expect((await sut.store.list('p/ab')).sort()).toEqual(['p/ab/x']);
      expect((await sut.store.list('p')).sort()).toEqual(['p/a-b', 'p/a/x', 'p/ab/x']);
    });

    test('list returns keys at every depth; an empty prefix lists everything', async () => {
      const keys = ['top', 'c/i/n/cert.pem', 'c/i/n/key.pem', 'c/i/m/cert.pem', 'c/j/n/deep/er/still'];
      for (const key of keys) await sut.store.put(key, key);
      expect((await sut.store.list('')).sort()).toEqual([...keys].sort());
      expect((await sut.store.list('c/i')).sort()).toEqual([
        'c/i/m/cert.pem',
        'c/i/n/cert.pem',
        'c/i/n/key.pem',
      ]);
      expect((await sut.store.list('c/i/n/cert.pem')).sort()).toEqual(['c/i/n/cert.pem']);
    });

    test('list of a prefix with no keys is empty', async () => {
      expect(await sut.store.list('')).toEqual([]);
      await sut.store.put('some/key', 'v');
      expect(await sut.store.list('other')).toEqual([]);
      expect(await sut.store.list('some/key/below')).toEqual([]);
    });

    test('deleted keys disappear from list', async () => {
      await sut.store.put('l/one', '1');
      await sut.store.put('l/two', '2');
      await sut.store.delete('l/one');
      expect(await sut.store.list('l')).toEqual(['l/two']);
      await sut.store.delete('l/two');
      expect(await sut.store.list('l')).toEqual([]);
      expect(await sut.store.list('')).toEqual([]);
    });

    test('hostile keys are refused with INVALID_STORE_KEY by every method', async () => {
      for (const key of HOSTILE_KEYS) {
        await rejectsWith(() => sut.store.get(key), 'INVALID_STORE_KEY');
        await rejectsWith(() => sut.store.put(key, 'x'), 'INVALID_STORE_KEY');
        await rejectsWith(() => sut.store.delete(key), 'INVALID_STORE_KEY');
        await rejectsWith(() => sut.store.stat(key), 'INVALID_STORE_KEY');
        if (key !== '') await rejectsWith(() => sut.store.list(key), 'INVALID_STORE_KEY');
        await rejectsWith(() => sut.store.tryLock(key, { ttlMs: LONG }), 'INVALID_STORE_KEY');
        await rejectsWith(() => sut.store.lock(key, { ttlMs: LONG }), 'INVALID_STORE_KEY');
      }
      expect(await sut.store.list('')).toEqual([]);
    });

    test('concurrent writers and readers of one key never see a torn value', async () => {
      await sut.store.put('torn', framed(0, 0, 1000));
      let writing = true;
      let reads = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let round = 1; round <= 8; round++) {
          await sut.store.put('torn', framed(w + 1, round, 20_000 + ((w * 8 + round) % 7) * 30_000));
        }
      });
      const readers = Array.from({ length: 3 }, async () => {
        while (writing) {
          const value = await sut.store.get('torn');
          reads++;
          expect(isWhole(value), 'a read returned a torn or mixed value').toBe(true);
        }
      });
      await Promise.all(writers).finally(() => {
        writing = false;
      });
      await Promise.all(readers);
      expect(reads).toBeGreaterThan(0);
      expect(isWhole(await sut.store.get('torn'))).toBe(true);
    });

    // ---- locks --------------------------------------------------------------------------------

    test('tryLock is exclusive per name and returns a well-formed lease', async () => {
      const before = Date.now();
      const a = await sut.store.tryLock('locks/a', { ttlMs: LONG });
      expect(a).not.toBeNull();
      expect(a!.name).toBe('locks/a');
      expect(typeof a!.owner).toBe('string');
      expect(a!.owner.length).toBeGreaterThan(0);
      expect(Number.isFinite(a!.token)).toBe(true);
      // Epoch milliseconds, about ttl from now (loose: the backend may use its own clock).
      expect(a!.expiresAt).toBeGreaterThan(before + LONG - 60_000);
      expect(a!.expiresAt).toBeLessThan(Date.now() + LONG + 60_000);
      expect(await sut.store.tryLock('locks/a', { ttlMs: LONG })).toBeNull();
      const other = await sut.store.tryLock('locks/b', { ttlMs: LONG });
      expect(other, 'different names are independent').not.toBeNull();
      expect(await sut.store.unlock(a!)).toBe(true);
      const again = await sut.store.tryLock('locks/a', { ttlMs: LONG });
      expect(again).not.toBeNull();
      expect(again!.token).toBeGreaterThan(a!.token);
    });

    test('lock() waits while the lock is held and gets it promptly after unlock', async () => {
      const a = await sut.store.lock('wait', { ttlMs: LONG });
      let got: LockLease | undefined;
      const waiting = sut.store
        .lock('wait', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) })
        .then((lease) => {
          got = lease;
          return lease;
        });
      await sleep(200);
      expect(got, 'lock() returned while the lock was held').toBeUndefined();
      const released = Date.now();
      expect(await sut.store.unlock(a)).toBe(true);
      const b = await waiting;
      expect(Date.now() - released).toBeLessThan(2_000);
      expect(b.token).toBeGreaterThan(a.token);
    });

    test('fencing tokens strictly increase across acquire, release and takeover', async () => {
      const tokens: number[] = [];
      const t1 = (await sut.store.tryLock('fence', { ttlMs: LONG }))!;
      tokens.push(t1.token);
      expect(await sut.store.unlock(t1)).toBe(true);
      expect(await sut.store.unlock(t1), 'a second unlock is a no-op').toBe(false);
      const t2 = await sut.store.lock('fence', { ttlMs: LONG });
      tokens.push(t2.token);
      await sut.store.unlock(t2);
      const t3 = (await sut.store.tryLock('fence', { ttlMs: short }))!;
      tokens.push(t3.token);
      await sleep(short + slack);
      const t4 = (await sut.store.tryLock('fence', { ttlMs: LONG }))!;
      expect(t4, 'a lapsed lease is taken over').not.toBeNull();
      tokens.push(t4.token);
      await sut.store.unlock(t4);
      const t5 = await sut.store.lock('fence', { ttlMs: LONG });
      tokens.push(t5.token);
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    test('a lapsed lease is taken over by tryLock', async () => {
      const a = (await sut.store.tryLock('lapse', { ttlMs: short }))!;
      expect(await sut.store.tryLock('lapse', { ttlMs: LONG })).toBeNull();
      await sleep(short + slack);
      const b = await sut.store.tryLock('lapse', { ttlMs: LONG });
      expect(b).not.toBeNull();
      expect(b!.token).toBeGreaterThan(a.token);
    });

    test('a waiting lock() takes over a lease that lapses without unlock', async () => {
      const started = Date.now();
      const a = (await sut.store.tryLock('lapse-wait', { ttlMs: short }))!;
      const b = await sut.store.lock('lapse-wait', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) });
      const waited = Date.now() - started;
      expect(waited, 'lock() returned before the lease lapsed').toBeGreaterThanOrEqual(short - 50);
      expect(waited).toBeLessThan(short + 2_000);
      expect(b.token).toBeGreaterThan(a.token);
    });

    test('renewLock keeps a lease from being taken over past its original TTL', async () => {
      let lease = (await sut.store.tryLock('renew', { ttlMs: short }))!;
      const original = lease.expiresAt;
      const started = Date.now();
      while (Date.now() - started < short * 2) {
        await sleep(short / 3);
        lease = await sut.store.renewLock(lease);
        expect(await sut.store.tryLock('renew', { ttlMs: LONG })).toBeNull();
      }
      expect(lease.expiresAt).toBeGreaterThan(original);
      expect(lease.name).toBe('renew');
      const longer = await sut.store.renewLock(lease, LONG);
      expect(longer.expiresAt).toBeGreaterThan(Date.now() + LONG / 2);
      await sleep(short + slack);
      expect(await sut.store.tryLock('renew', { ttlMs: LONG }), 'renewed with a longer TTL').toBeNull();
      expect(await sut.store.unlock(longer)).toBe(true);
    });

    test('renewLock of a lease that was taken over or released throws LOCK_LOST', async () => {
      const a = (await sut.store.tryLock('lost', { ttlMs: short }))!;
      await sleep(short + slack);
      const b = (await sut.store.tryLock('lost', { ttlMs: LONG }))!;
      expect(b).not.toBeNull();
      await rejectsWith(() => sut.store.renewLock(a), 'LOCK_LOST');
      expect(await sut.store.unlock(b)).toBe(true);
      await rejectsWith(() => sut.store.renewLock(b), 'LOCK_LOST');
    });

    test('unlock of a lease that was taken over returns false and leaves the new holder', async () => {
      const a = (await sut.store.tryLock('steal', { ttlMs: short }))!;
      await sleep(short + slack);
      const b = (await sut.store.tryLock('steal', { ttlMs: LONG }))!;
      expect(b).not.toBeNull();
      expect(await sut.store.unlock(a)).toBe(false);
      expect(await sut.store.tryLock('steal', { ttlMs: LONG }), 'the new holder still holds it').toBeNull();
      expect(await sut.store.renewLock(b)).toMatchObject({ token: b.token });
      expect(await sut.store.unlock(b)).toBe(true);
    });

    test('lock() with an already-aborted signal rejects with LOCK_ABORTED at once', async () => {
      await sut.store.lock('abort', { ttlMs: LONG });
      const controller = new AbortController();
      controller.abort(new Error('cancelled'));
      const started = Date.now();
      await rejectsWith(
        () => sut.store.lock('abort', { ttlMs: LONG, signal: controller.signal }),
        'LOCK_ABORTED',
      );
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    test('lock() aborted while waiting rejects with LOCK_ABORTED promptly and takes nothing', async () => {
      const a = await sut.store.lock('abort-wait', { ttlMs: LONG });
      const controller = new AbortController();
      const waiting = sut.store.lock('abort-wait', { ttlMs: LONG, signal: controller.signal });
      await sleep(150);
      const aborted = Date.now();
      controller.abort();
      await rejectsWith(() => waiting, 'LOCK_ABORTED');
      expect(Date.now() - aborted).toBeLessThan(1_000);
      expect(await sut.store.unlock(a)).toBe(true);
      await sleep(300);
      expect(
        await sut.store.tryLock('abort-wait', { ttlMs: LONG }),
        'the aborted waiter took the lock',
      ).not.toBeNull();
    });

    test('many concurrent contenders never overlap and all get distinct tokens', async (context) => {
      const stores = [sut.store];
      if (sut.second) stores.push(await secondStore(context));
      let holders = 0;
      let overlaps = 0;
      const tokens: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const store = stores[i % stores.length]!;
          for (let round = 0; round < 5; round++) {
            const lease = await store.lock('crowd', { ttlMs: LONG, signal: AbortSignal.timeout(timeout) });
            if (++holders !== 1) overlaps++;
            tokens.push(lease.token);
            await sleep(1 + Math.random() * 3);
            holders--;
            expect(await store.unlock(lease)).toBe(true);
          }
        }),
      );
      expect(overlaps, 'two contenders held the lock at once').toBe(0);
      expect(new Set(tokens).size).toBe(40);
      // Exclusion makes push order the acquisition order, so tokens must ascend in it.
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    test('two clients of one backend share values and exclude each other', async (context) => {
      const other = await secondStore(context);
      await sut.store.put('shared/value', 'from the first');
      expect(text(await other.get('shared/value'))).toBe('from the first');
      const a = (await sut.store.tryLock('shared', { ttlMs: LONG }))!;
      expect(await other.tryLock('shared', { ttlMs: LONG })).toBeNull();
      const waiting = other.lock('shared', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) });
      await sleep(100);
      expect(await sut.store.unlock(a)).toBe(true);
      const b = await waiting;
      expect(b.token).toBeGreaterThan(a.token);
      expect(await sut.store.tryLock('shared', { ttlMs: LONG })).toBeNull();
      expect(await other.unlock(b)).toBe(true);
      expect(await sut.store.tryLock('shared', { ttlMs: LONG })).not.toBeNull();
    });

    // ---- sealed records (stores that offer `sealing`) ------------------------------------------

    test('sealed records round-trip and refuse a value moved, written without the key, or replayed', async (context) => {
      const sealing = sut.store.sealing;
      if (!sealing) return context.skip('the store has no sealing (no encryption key)');
      const key = 'ca/x/revoked.json';
      const reason = (run: () => unknown) =>
        Promise.resolve()
          .then(run)
          .then(
            () => 'accepted',
            (error: { code?: string; details?: { reason?: string } }) =>
              `${error.code}:${error.details?.reason}`,
          );
      await sut.store.put(key, sealing.seal(key, 'first', 1));
      const first = await sut.store.get(key);
      expect(sealing.open(key, first)).toMatchObject({ version: 1 });
      await sut.store.put(key, sealing.seal(key, 'second', 2));
      const second = sealing.open(key, await sut.store.get(key));
      expect({ value: text(second?.value ?? null), version: second?.version }).toEqual({
        value: 'second',
        version: 2,
      });
      await sut.store.put(key, first!);
      expect(await reason(async () => sealing.open(key, await sut.store.get(key)))).toBe(
        'STORE_CORRUPT:replayed',
      );
      await sut.store.put('ca/y/revoked.json', first!);
      expect(
        await reason(async () => sealing.open('ca/y/revoked.json', await sut.store.get('ca/y/revoked.json'))),
      ).toBe('STORE_CORRUPT:decrypt-failed');
      await sut.store.put('ca/z/revoked.json', 'written without the key');
      expect(
        await reason(async () => sealing.open('ca/z/revoked.json', await sut.store.get('ca/z/revoked.json'))),
      ).toBe('STORE_CORRUPT:not-sealed');
      expect(sealing.open('ca/none', await sut.store.get('ca/none'))).toBeNull();
      if (!sut.second) return;
      const other = await secondStore(context);
      await sut.store.put(key, sealing.seal(key, 'third', 3));
      expect(other.sealing?.open(key, await other.get(key))).toMatchObject({ version: 3 });
      expect(await reason(() => other.sealing?.open(key, first))).toBe('STORE_CORRUPT:replayed');
    });

    test('a closed store rejects every call with STORE_CLOSED', async () => {
      await sut.store.put('before/close', 'v');
      const lease = (await sut.store.tryLock('closing', { ttlMs: LONG }))!;
      await sut.store.close();
      const store = sut.store;
      await rejectsWith(() => store.get('before/close'), 'STORE_CLOSED');
      await rejectsWith(() => store.put('before/close', 'w'), 'STORE_CLOSED');
      await rejectsWith(() => store.delete('before/close'), 'STORE_CLOSED');
      await rejectsWith(() => store.list(''), 'STORE_CLOSED');
      await rejectsWith(() => store.stat('before/close'), 'STORE_CLOSED');
      await rejectsWith(() => store.lock('closing', { ttlMs: LONG }), 'STORE_CLOSED');
      await rejectsWith(() => store.tryLock('closing', { ttlMs: LONG }), 'STORE_CLOSED');
      await rejectsWith(() => store.renewLock(lease), 'STORE_CLOSED');
      await rejectsWith(() => store.unlock(lease), 'STORE_CLOSED');
    });
  });
}
