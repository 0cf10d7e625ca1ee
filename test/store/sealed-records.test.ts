// Sealed records (Store.sealing): values that become trust, sealed with the store's key and bound
// to their store key and a version. Whoever can write the shared store without the key plants
// values in the real Redis here: a record copied from another key, an older record put back at
// the same key, plaintext, a forged or altered envelope. Each is refused with a typed reason.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { CachedStore } from '../../src/store/cached-store.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { RecordSealing, Store } from '../../src/store/store.js';
import { redisPeer } from '../support/services.js';

const url = await redisPeer();
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const REVOKED = 'ca/internal/revoked.json';
const POINTER = 'certificates/internal/a.example/current.json';
const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

async function refused(run: () => unknown, reason: string): Promise<void> {
  await expect(Promise.resolve().then(run)).rejects.toMatchObject({
    code: 'STORE_CORRUPT',
    details: expect.objectContaining({ reason }),
  });
}

describe.skipIf(!url)('sealed records in a real Redis', () => {
  const admin = new Redis(url ?? '', { lazyConnect: true });
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(() => admin.quit());
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function replica(prefix: string, keys = [`k1:${K1}`]): RedisStore & { sealing: RecordSealing } {
    const store = new RedisStore({ url: url!, prefix, encryption: { keys }, logger: silentLogger });
    cleanup.push(() => store.close());
    expect(store.sealing).toBeDefined();
    return store as RedisStore & { sealing: RecordSealing };
  }

  function fresh() {
    const prefix = `certkeeper-test-${randomUUID()}`;
    cleanup.push(async () => {
      const keys = await admin.keys(`${prefix}:*`);
      if (keys.length > 0) await admin.del(...keys);
    });
    const raw = (key: string) => admin.hgetBuffer(`${prefix}:v:${key}`, 'd');
    const plant = (key: string, value: Buffer | string) => admin.hset(`${prefix}:v:${key}`, 'd', value);
    return { prefix, raw, plant };
  }

  async function write(
    store: Store & { sealing: RecordSealing },
    key: string,
    value: string,
    version: number,
  ) {
    await store.put(key, store.sealing.seal(key, value, version));
  }
  const read = async (store: Store & { sealing: RecordSealing }, key: string, atLeast?: number) =>
    store.sealing.open(key, await store.get(key), atLeast === undefined ? {} : { atLeast });

  it('an older record put back at the same key is refused as replayed', async () => {
    const { prefix, raw, plant } = fresh();
    const store = replica(prefix);
    await write(store, REVOKED, '{"revoked":[]}', 1);
    expect(await read(store, REVOKED)).toMatchObject({ version: 1 });
    const older = (await raw(REVOKED))!;
    await write(store, REVOKED, '{"revoked":["0a"]}', 2);
    expect(text((await read(store, REVOKED))?.value)).toBe('{"revoked":["0a"]}');

    // Somebody with write access but no key puts the older list back.
    await plant(REVOKED, older);
    await refused(() => read(store, REVOKED), 'replayed');
    // Another replica that saw version 2 refuses it as well.
    const other = replica(prefix);
    await write(store, REVOKED, '{"revoked":["0a"]}', 2);
    expect(await read(other, REVOKED)).toMatchObject({ version: 2 });
    await plant(REVOKED, older);
    await refused(() => read(other, REVOKED), 'replayed');
    // A replica started after the replay has no memory of version 2: it needs the floor.
    const restarted = replica(prefix);
    await refused(() => read(restarted, REVOKED, 2), 'replayed');
    expect(await read(replica(prefix), REVOKED)).toMatchObject({ version: 1 });
    // A missing record is null, not an error.
    expect(await read(store, 'ca/internal/nothing.json')).toBeNull();
  });

  it('a record copied from another key, plaintext, forged or altered is refused', async () => {
    const { prefix, raw, plant } = fresh();
    const store = replica(prefix);
    await write(store, POINTER, '{"serial":"01"}', 7);
    await write(store, 'certificates/internal/b.example/current.json', '{"serial":"02"}', 9);
    // Copied from another certificate's pointer (a valid record, for another key).
    await plant(POINTER, (await raw('certificates/internal/b.example/current.json'))!);
    await refused(() => read(store, POINTER), 'decrypt-failed');
    // Written as it is, without the key.
    await plant(POINTER, '{"serial":"ff"}');
    await refused(() => read(store, POINTER), 'not-sealed');
    // Sealed by a store with another key.
    const foreign = replica(prefix, [`k1:${K2}`]);
    await write(foreign, POINTER, '{"serial":"ff"}', 100);
    await refused(() => read(store, POINTER), 'decrypt-failed');
    // A valid record with its version raised (the version is authenticated with the value).
    await write(store, POINTER, '{"serial":"01"}', 7);
    const bumped = Buffer.from((await raw(POINTER))!);
    const idEnd = 4 + 1 + bumped[4]!;
    bumped[idEnd + 7]! ^= 0x10;
    await plant(POINTER, bumped);
    await refused(() => read(store, POINTER), 'decrypt-failed');
    await plant(POINTER, bumped.subarray(0, idEnd + 3));
    await refused(() => read(store, POINTER), 'malformed');
  });

  it('reencrypt() reseals records sealed with an older key, keeping their version', async () => {
    const { prefix, raw } = fresh();
    await write(replica(prefix), REVOKED, 'list', 5);
    const rotated = replica(prefix, [`k2:${K2}`, `k1:${K1}`]);
    expect(await rotated.reencrypt()).toEqual({ examined: 1, rewritten: 1 });
    expect(Buffer.from((await raw(REVOKED))!.subarray(5, 7)).toString()).toBe('k2');
    const onlyNew = replica(prefix, [`k2:${K2}`]);
    expect(await read(onlyNew, REVOKED)).toMatchObject({ version: 5 });
    expect(text((await read(onlyNew, REVOKED))?.value)).toBe('list');
  });

  it('a CachedStore offers its primary’s sealing, and its local copy keeps records sealed', async () => {
    const { prefix } = fresh();
    const directory = await mkdtemp(join(tmpdir(), 'certkeeper-sealed-'));
    cleanup.push(() => rm(directory, { recursive: true, force: true }));
    const primary = replica(prefix);
    const cache = new FileStore({ directory });
    const cached = new CachedStore({ primary, cache, logger: silentLogger });
    expect(cached.sealing).toBe(primary.sealing);
    await write(cached as CachedStore & { sealing: RecordSealing }, REVOKED, 'list', 3);
    expect(await cached.sealing!.open(REVOKED, await cache.get(REVOKED))).toMatchObject({ version: 3 });
    await cache.close();
  });
});

describe('which stores offer sealing', () => {
  it('only those holding an encryption key', async () => {
    const plain: Store[] = [new MemoryStore(), new FileStore({ directory: join(tmpdir(), 'never-created') })];
    for (const store of plain) expect(store.sealing).toBeUndefined();
    expect(new EncryptedStore(new MemoryStore(), { env: {}, logger: silentLogger }).sealing).toBeUndefined();
    const encrypted = new EncryptedStore(new MemoryStore(), { keys: [K1], logger: silentLogger });
    expect(encrypted.sealing).toBeDefined();
    expect(new RedisStore({ url: 'redis://127.0.0.1:1', encryption: 'none' }).sealing).toBeUndefined();
    expect(() => encrypted.sealing!.seal(REVOKED, 'x', -1)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'version' } }),
    );
    expect(() => encrypted.sealing!.open(REVOKED, null, { atLeast: 1.5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'atLeast' } }),
    );
  });
});
