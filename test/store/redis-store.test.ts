// RedisStore against the machine's real Redis: the conformance suite (two clients, encryption on),
// then what only a network store has: prefixes, pub/sub watch, killed connections, unreachable
// and silent servers. Every test works under its own key prefix and removes it afterwards; the
// shared Redis itself is never restarted or flushed.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { StoreChange } from '../../src/store/store.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { closedPort, eventually, redisPeer, sleep } from '../support/services.js';

const url = await redisPeer();
const KEY = randomBytes(32).toString('base64');

async function dropPrefix(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await admin.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Kills the subscriber connections of the stores under `prefix`, as a network failure would. */
async function killWatchConnections(admin: Redis, prefix: string): Promise<void> {
  const ids = String(await admin.client('LIST'))
    .split('\n')
    .filter((line) => line.includes(` name=certkeeper:${prefix}:watch `))
    .map((line) => /\bid=(\d+)/.exec(line)![1]!);
  if (ids.length === 0) throw new Error(`no watch connection of ${prefix} to kill`);
  for (const id of ids) await admin.client('KILL', 'ID', id);
}

if (!url) {
  describe.skip('RedisStore (no Redis)', () => it('needs Redis', () => {}));
} else {
  const admin = new Redis(url, { lazyConnect: true });
  afterAll(() => admin.quit());

  await runStoreConformance('RedisStore', () => {
    const prefix = `certkeeper-test-${randomUUID()}`;
    const open = () => new RedisStore({ url, prefix, encryption: { keys: [KEY] }, logger: silentLogger });
    return {
      store: open(),
      second: open,
      interruptWatch: () => killWatchConnections(admin, prefix),
      cleanup: () => dropPrefix(admin, prefix),
    };
  });

  // The wrapper over a real shared store: fenced writes and watch must pass through it.
  await runStoreConformance('EncryptedStore(RedisStore)', () => {
    const prefix = `certkeeper-test-${randomUUID()}`;
    const open = () =>
      new EncryptedStore(new RedisStore({ url, prefix, encryption: 'none', logger: silentLogger }), {
        keys: [KEY],
        logger: silentLogger,
      });
    return {
      store: open(),
      second: open,
      interruptWatch: () => killWatchConnections(admin, prefix),
      cleanup: () => dropPrefix(admin, prefix),
    };
  });

  describe('RedisStore on a real Redis', () => {
    const prefixes: string[] = [];
    const stores: RedisStore[] = [];
    const open = (options: Partial<RedisStoreOptions> = {}, prefix = prefixes.at(-1)!) => {
      const store = new RedisStore({
        url,
        prefix,
        encryption: { keys: [KEY] },
        logger: silentLogger,
        ...options,
      } as RedisStoreOptions);
      stores.push(store);
      return store;
    };
    const fresh = () => {
      prefixes.push(`certkeeper-test-${randomUUID()}`);
      return open();
    };

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const prefix of prefixes.splice(0)) await dropPrefix(admin, prefix);
    });

    it('validates options eagerly and names the bad option', () => {
      const cases: [unknown, RegExp][] = [
        [undefined, /options/],
        [{}, /url/],
        [{ url, connection: {} }, /url/],
        [{ url: 'http://127.0.0.1:6379' }, /url/],
        [{ url: 'not a url' }, /url/],
        [{ url, prefix: 'a:b' }, /prefix/],
        [{ url, prefix: '' }, /prefix/],
        [{ url, timeoutMs: 0 }, /timeoutMs/],
        [{ url, client: {} }, /client/],
        [{ url, encryption: { keys: ['short'] } }, /encryption\.keys\[0\]/],
        [{ url, logger: 'console' }, /logger/],
      ];
      for (const [options, option] of cases) {
        expect(() => new RedisStore(options as RedisStoreOptions), String(option)).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(option) }),
        );
      }
    });

    it('keeps everything under its prefix, with private keys encrypted at rest', async () => {
      const store = fresh();
      const prefix = prefixes.at(-1)!;
      const pem =
        '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n';
      await store.put('certificates/i/a/1/key.pem', pem);
      await store.put('certificates/i/a/1/cert.pem', 'CERT');
      const raw = await admin.hgetBuffer(`${prefix}:v:certificates/i/a/1/key.pem`, 'd');
      expect(raw!.subarray(0, 4).toString('latin1')).toBe('CKE\u0001');
      expect(raw!.toString('latin1')).not.toContain('PRIVATE KEY');
      expect(await admin.hget(`${prefix}:v:certificates/i/a/1/cert.pem`, 'd')).toBe('CERT');
      expect(new TextDecoder().decode((await store.get('certificates/i/a/1/key.pem'))!)).toBe(pem);
      expect((await store.stat('certificates/i/a/1/key.pem'))?.size).toBe(pem.length);
      const lease = (await store.tryLock('certificates/i/a'))!;
      const keys = await admin.keys(`${prefix}:*`);
      expect(keys.every((key) => key.startsWith(`${prefix}:`))).toBe(true);
      expect(keys.length).toBeGreaterThanOrEqual(5); // two values, index, lock, fence
      const neighbour = open({}, `${prefix}-other`);
      prefixes.push(`${prefix}-other`);
      expect(await neighbour.list('')).toEqual([]);
      expect(await neighbour.tryLock('certificates/i/a')).not.toBeNull();
      await store.unlock(lease);
    });

    it('lists exactly, whatever glob characters the keys contain', async () => {
      const store = fresh();
      const keys = ['g/a*', 'g/a*/x', 'g/ab/x', 'g/a?/y', 'g/[a]/z', 'g/a/[b]', 'g/a0'];
      for (const key of keys) await store.put(key, key);
      expect((await store.list('g/a*')).sort()).toEqual(['g/a*', 'g/a*/x']);
      expect((await store.list('g/a?')).sort()).toEqual(['g/a?/y']);
      expect((await store.list('g/[a]')).sort()).toEqual(['g/[a]/z']);
      expect((await store.list('g/a')).sort()).toEqual(['g/a/[b]']);
      expect((await store.list('g')).length).toBe(7);
    });

    it('watch: a put or delete on one client reaches another client’s listener, filtered by prefix', async () => {
      const writer = fresh();
      const reader = open();
      const seen: StoreChange[] = [];
      const unwatch = await reader.watch('certificates/i', (change) => seen.push(change));
      const started = Date.now();
      await writer.put('certificates/i/a/current.json', '{}');
      await writer.put('certificates/other/a/current.json', '{}');
      await writer.put('certificates/ix/a/current.json', '{}');
      await writer.delete('certificates/i/a/current.json');
      await writer.delete('certificates/i/never');
      await eventually(() => seen.length >= 2, 2_000);
      expect(Date.now() - started).toBeLessThan(2_000);
      await sleep(100);
      expect(seen).toEqual([
        { type: 'change', key: 'certificates/i/a/current.json' },
        { type: 'change', key: 'certificates/i/a/current.json' },
      ]);
      unwatch();
      unwatch();
      await writer.put('certificates/i/b/current.json', '{}');
      await sleep(200);
      expect(seen).toHaveLength(2);
    });

    it('recovers when Redis kills its connections: commands work again and watch resubscribes', async () => {
      const store = fresh();
      const writer = open();
      const prefix = prefixes.at(-1)!;
      const seen: StoreChange[] = [];
      await store.watch('', (change) => seen.push(change));
      await store.put('before', '1');
      await writer.put('writer', '1');
      const ids = String(await admin.client('LIST'))
        .split('\n')
        .filter((line: string) => line.includes(` name=certkeeper:${prefix}`))
        .map((line: string) => /\bid=(\d+)/.exec(line)![1]!);
      // This store's command and subscriber connections, and the writer's: never anybody else's.
      expect(ids.length).toBe(3);
      for (const id of ids) await admin.client('KILL', 'ID', id);
      const recovered = await eventually(async () => (await store.get('before')) !== null, 5_000);
      expect(recovered).toBe(true);
      await eventually(() => seen.some((change) => change.type === 'resync'), 5_000);
      expect(seen.some((change) => change.type === 'resync')).toBe(true);
      await eventually(async () => writer.put('after', '2').then(() => true), 5_000);
      await eventually(
        () => seen.some((change) => change.type === 'change' && change.key === 'after'),
        2_000,
      );
      expect(seen).toContainEqual({ type: 'change', key: 'after' });
    });

    it('an unreachable Redis fails with STORE_IO within the timeout instead of hanging', async () => {
      const port = await closedPort();
      const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, timeoutMs: 3_000, encryption: false });
      stores.push(store);
      for (const call of [() => store.get('a'), () => store.tryLock('a'), () => store.watch('', () => {})]) {
        const started = Date.now();
        await expect(call()).rejects.toMatchObject({ code: 'STORE_IO', message: /ECONNREFUSED/ });
        // The refusal is reported at once, not after the 3 s deadline.
        expect(Date.now() - started).toBeLessThan(1_000);
      }
    });

    it('a server that accepts but never answers fails with STORE_IO at the deadline', async () => {
      const sockets: Socket[] = [];
      const silent: Server = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = silent.address() as { port: number };
        const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, timeoutMs: 400, encryption: false });
        stores.push(store);
        const started = Date.now();
        await expect(store.put('a', 'v')).rejects.toMatchObject({ code: 'STORE_IO' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(350);
        expect(Date.now() - started).toBeLessThan(2_000);
        await store.close();
        await expect(store.get('a')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('uses an existing client, watches through a duplicate, and never closes the client', async () => {
      prefixes.push(`certkeeper-test-${randomUUID()}`);
      const client = new Redis(url);
      try {
        const store = open({ url: undefined, client });
        const seen: string[] = [];
        await store.watch('', (change) => change.type === 'change' && seen.push(change.key));
        await store.put('shared', 'v');
        await eventually(() => seen.length > 0, 2_000);
        expect(seen).toEqual(['shared']);
        await store.close();
        expect(await client.ping()).toBe('PONG');
        expect(client.status).toBe('ready');
      } finally {
        client.disconnect();
      }
    });

    it('refuses to start without an encryption key unless encryption is "none", naming the option', async () => {
      prefixes.push(`certkeeper-test-${randomUUID()}`);
      const prefix = prefixes.at(-1)!;
      expect(process.env.CERTKEEPER_ENCRYPTION_KEY).toBeUndefined();
      for (const encryption of [{ env: {} }, undefined, {}]) {
        expect(() => new RedisStore({ url, prefix, encryption, logger: silentLogger })).toThrow(
          expect.objectContaining({
            code: 'INVALID_OPTION',
            details: { option: 'encryption' },
            message: expect.stringMatching(/CERTKEEPER_ENCRYPTION_KEY.*encryption: 'none'/),
          }),
        );
      }
      // The deliberate opt-out stores private keys as they are, without a word.
      const warn = vi.fn();
      const logger = { ...silentLogger, warn };
      const store = open({ logger, encryption: 'none' });
      await store.put('accounts/i/a/key.pem', 'plain');
      expect(String(await admin.hget(`${prefix}:v:accounts/i/a/key.pem`, 'd'))).toBe('plain');
      open({ logger, encryption: false }); // the older spelling of the same choice
      expect(warn).not.toHaveBeenCalled();
      // Reading with a key configured refuses the plaintext private key instead of serving it.
      await expect(open().get('accounts/i/a/key.pem')).rejects.toMatchObject({
        code: 'STORE_CORRUPT',
        details: { reason: 'not-encrypted' },
      });
      expect(() => open({ encryption: 'off' as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'encryption' } }),
      );
    });
  });
}
