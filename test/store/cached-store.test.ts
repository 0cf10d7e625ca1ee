// The local copy: the Store contract holds, and a primary that becomes unreachable falls back to
// what was mirrored, while "not found" from a reachable primary stays "not found".
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { CachedStore } from '../../src/store/cached-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreConformance } from '../../src/testing/index.js';

/** A primary that can be taken off the network, failing the way a remote store does. */
class Unreachable extends MemoryStore {
  down = false;
  #check() {
    if (this.down) throw new CertkeeperError('STORE_IO', 'connect ECONNREFUSED 127.0.0.1:6379');
  }
  override async get(key: string) {
    this.#check();
    return super.get(key);
  }
  override async put(key: string, value: Uint8Array | string) {
    this.#check();
    return super.put(key, value);
  }
  override async list(prefix: string) {
    this.#check();
    return super.list(prefix);
  }
  override async stat(key: string) {
    this.#check();
    return super.stat(key);
  }
  override async tryLock(name: string, options?: { ttlMs?: number }) {
    this.#check();
    return super.tryLock(name, options);
  }
}

await runStoreConformance('CachedStore (memory primary, memory copy)', () => {
  const primary = new MemoryStore();
  return { store: new CachedStore({ primary, cache: new MemoryStore() }) };
});

describe('CachedStore', () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };

  it('serves the local copy when the primary is unreachable, and only then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-cached-'));
    try {
      const primary = new Unreachable();
      const cache = new FileStore({ directory: dir });
      const store = new CachedStore({ primary, cache, logger: quiet });
      await store.put('certificates/x/a/current.json', '{"v":1}');
      await primary.put('certificates/x/b/current.json', '{"v":2}'); // written by another replica
      expect(Buffer.from((await store.get('certificates/x/b/current.json'))!).toString()).toBe('{"v":2}');

      // A later process: the primary is down at start-up, the local copy on disk serves.
      primary.down = true;
      const restarted = new CachedStore({ primary, cache: new FileStore({ directory: dir }), logger: quiet });
      expect(Buffer.from((await restarted.get('certificates/x/a/current.json'))!).toString()).toBe('{"v":1}');
      expect(Buffer.from((await restarted.get('certificates/x/b/current.json'))!).toString()).toBe('{"v":2}');
      expect((await restarted.list('certificates/x')).sort()).toEqual([
        'certificates/x/a/current.json',
        'certificates/x/b/current.json',
      ]);
      // Writes and locks need the primary: they fail rather than pretend.
      await expect(restarted.put('certificates/x/c', 'v')).rejects.toMatchObject({ code: 'STORE_IO' });
      await expect(restarted.tryLock('issue/a')).rejects.toMatchObject({ code: 'STORE_IO' });

      // Reachable again: a value the primary deleted is gone from the copy at the next read.
      primary.down = false;
      await primary.delete('certificates/x/b/current.json');
      expect(await restarted.get('certificates/x/b/current.json')).toBeNull();
      primary.down = true;
      expect(await restarted.get('certificates/x/b/current.json')).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not hide a primary that answers with an error other than unavailability', async () => {
    const store = new CachedStore({ primary: new MemoryStore(), cache: new MemoryStore(), logger: quiet });
    await expect(store.get('../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_STORE_KEY' });
  });

  it('refuses options that are not stores, naming the option', () => {
    expect(() => new CachedStore({ primary: new MemoryStore(), cache: {} as never })).toThrowError(
      /option cache must be a Store/,
    );
  });
});
