// Garbage in a network store's own bookkeeping, planted in the real Redis and PostgreSQL: a lock
// with no lease, a fencing counter that is not a number, an index of the wrong type, a lease row
// that expires at 'infinity'. None of them may wedge renewal: a lock with no lease can only be
// garbage and is taken over after the configured lease, lock waits back off instead of spinning,
// the index is rebuilt from the values.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { ACQUIRE } from '../../src/store/redis-scripts.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { postgresPeer, redisPeer } from '../support/services.js';

const KEY = randomBytes(32).toString('base64');
const redisUrl = await redisPeer();
const postgresUrl = await postgresPeer();
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

describe.skipIf(!redisUrl)('RedisStore with garbage planted in its own keys', () => {
  const admin = new Redis(redisUrl ?? '', { lazyConnect: true });
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(() => admin.quit());
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  /** A store on a fresh prefix, through a client that counts lock attempts. */
  function fresh() {
    const prefix = `certkeeper-test-${randomUUID()}`;
    const client = new Redis(redisUrl!);
    let attempts = 0;
    const call = client.callBuffer.bind(client) as (...args: unknown[]) => Promise<unknown>;
    client.callBuffer = ((...args: unknown[]) => {
      if (args[1] === ACQUIRE.sha || args[1] === ACQUIRE.lua) attempts++;
      return call(...args);
    }) as typeof client.callBuffer;
    const store = new RedisStore({ client, prefix, encryption: { keys: [KEY] }, logger: silentLogger });
    cleanup.push(async () => {
      await store.close();
      client.disconnect();
      const keys = await admin.keys(`${prefix}:*`);
      if (keys.length > 0) await admin.del(...keys);
    });
    return { store, prefix, attempts: () => attempts };
  }

  const plants: [string, (admin: Redis, key: string) => Promise<unknown>][] = [
    ['a string with no expiry', (a, key) => a.set(key, 'garbage')],
    ['a lease-shaped value with no expiry', (a, key) => a.set(key, `7:${randomUUID()}:30000`)],
    ['a hash', (a, key) => a.hset(key, 'x', '1')],
    ['a lease with a ten-year expiry', (a, key) => a.set(key, `7:${randomUUID()}:1000`, 'EX', 315_360_000)],
  ];

  for (const [what, plant] of plants) {
    it(`a lock key planted as ${what} is taken over after the configured lease, without spinning`, async () => {
      const { store, prefix, attempts } = fresh();
      await plant(admin, `${prefix}:lock:issue/a.example`);
      const lease = await store.lock('issue/a.example', {
        ttlMs: 1_000,
        signal: AbortSignal.timeout(10_000),
      });
      expect(lease.token).toBeGreaterThan(0);
      // The wait backs off (10 ms growing to 250 ms): a handful of attempts over one lease, where
      // a retry every millisecond or two made hundreds.
      expect(attempts()).toBeLessThan(30);
      expect(await store.unlock(lease)).toBe(true);
      const again = await store.tryLock('issue/a.example', { ttlMs: 10_000 });
      expect(again?.token).toBeGreaterThan(lease.token);
    });
  }

  it('a fencing counter that is not a number is repaired above every token, and the lock is not left held', async () => {
    for (const garbage of ['not a number', '-5', '1.5', '99999999999999999999', 'hash']) {
      const { store, prefix } = fresh();
      const held = (await store.tryLock('issue/a.example', { ttlMs: 60_000 }))!;
      await store.unlock(held);
      const fence = `${prefix}:fence:issue/a.example`;
      if (garbage === 'hash') {
        await admin.del(fence);
        await admin.hset(fence, 'x', '1');
      } else {
        await admin.set(fence, garbage);
      }
      const lease = await store.tryLock('issue/a.example', { ttlMs: 60_000 });
      expect(lease, `fence ${garbage}`).not.toBeNull();
      expect(lease!.token).toBeGreaterThan(held.token);
      expect(Number.isSafeInteger(lease!.token)).toBe(true);
      expect(await store.unlock(lease!)).toBe(true);
      const next = await store.tryLock('issue/a.example', { ttlMs: 60_000 });
      expect(next!.token).toBeGreaterThan(lease!.token);
    }
  });

  it('an index key of the wrong type is rebuilt from the values instead of failing every write', async () => {
    const { store, prefix } = fresh();
    const keys = [
      'certificates/i/a/current.json',
      'certificates/i/a/01/cert.pem',
      'certificates/i/a/01/key.pem',
    ];
    for (const key of keys) await store.put(key, key);
    for (const plant of [
      () => admin.set(`${prefix}:index`, 'garbage'),
      () => admin.hset(`${prefix}:index`, 'x', '1'),
      () => admin.rpush(`${prefix}:index`, 'certificates/i/ghost'),
    ]) {
      await admin.del(`${prefix}:index`);
      await plant();
      await store.put('certificates/i/b/current.json', 'new');
      expect((await store.list('certificates')).sort()).toEqual(
        [...keys, 'certificates/i/b/current.json'].sort(),
      );
      expect(text(await store.get('certificates/i/a/01/key.pem'))).toBe('certificates/i/a/01/key.pem');
      await admin.del(`${prefix}:index`);
      await plant();
      // Listing and deleting rebuild it just the same.
      expect((await store.list('')).sort()).toEqual([...keys, 'certificates/i/b/current.json'].sort());
      await admin.del(`${prefix}:index`);
      await plant();
      expect(await store.delete('certificates/i/b/current.json')).toBe(true);
      expect((await store.list('')).sort()).toEqual([...keys].sort());
    }
  });
});

describe.skipIf(!postgresUrl)('PostgresStore with garbage planted in its lease table', () => {
  const admin = new pg.Pool({ connectionString: postgresUrl ?? '', max: 2 });
  admin.on('error', () => {});
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(() => admin.end());
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function fresh() {
    const table = `ck_test_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const store = new PostgresStore({
      connectionString: postgresUrl!,
      table,
      encryption: { keys: [KEY] },
      logger: silentLogger,
    });
    cleanup.push(async () => {
      await store.close();
      await admin.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`);
    });
    return { store, locks: `public.${table}_locks` };
  }

  const plants: [string, string][] = [
    ["expires_at = 'infinity'", "expires_at = 'infinity'"],
    ['expires_at in the year 3000', "expires_at = '3000-01-01'"],
    ["ttl_ms = 'NaN' and expires_at = 'infinity'", "ttl_ms = 'NaN', expires_at = 'infinity'"],
    ['ttl_ms = -1 and expires_at a day ahead', "ttl_ms = -1, expires_at = now() + interval '1 day'"],
  ];

  for (const [what, set] of plants) {
    it(`a lease row with ${what} is taken over after the configured lease`, async () => {
      const { store, locks } = fresh();
      const held = (await store.tryLock('issue/a.example', { ttlMs: 60_000 }))!;
      await admin.query(`UPDATE ${locks} SET ${set} WHERE name = $1`, ['issue/a.example']);
      // Not taken over at once: the garbage gets the configured lease first (the first contender's).
      expect(await store.tryLock('issue/a.example', { ttlMs: 1_000 })).toBeNull();
      const lease = await store.lock('issue/a.example', {
        ttlMs: 1_000,
        signal: AbortSignal.timeout(10_000),
      });
      expect(lease.token).toBeGreaterThan(held.token);
      await expect(store.renewLock(held)).rejects.toMatchObject({ code: 'LOCK_LOST' });
      expect(await store.renewLock(lease)).toMatchObject({ token: lease.token });
      expect(await store.unlock(lease)).toBe(true);
    });
  }
});
