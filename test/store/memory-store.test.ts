import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreConformance } from '../../src/testing/index.js';

await runStoreConformance('MemoryStore', () => ({ store: new MemoryStore() }));

describe('MemoryStore specifics', () => {
  it('reads lease time from an injected clock (function or { now() })', async () => {
    let now = 1_000_000;
    for (const clock of [() => now, { now: () => now }]) {
      const store = new MemoryStore({ clock });
      const a = (await store.tryLock('l', { ttlMs: 1_000 }))!;
      expect(a.expiresAt).toBe(now + 1_000);
      expect(await store.tryLock('l')).toBeNull();
      now += 1_001;
      const b = await store.tryLock('l');
      expect(b?.token).toBe(a.token + 1);
      await store.put('k', 'v');
      expect((await store.stat('k'))?.modified.getTime()).toBe(now);
    }
  });

  it('a waiting lock() notices a lease lapsing on an injected clock without a release', async () => {
    let now = 0;
    const store = new MemoryStore({ clock: () => now });
    await store.tryLock('l', { ttlMs: 60_000 });
    const waiting = store.lock('l', { signal: AbortSignal.timeout(5_000) });
    now += 60_001;
    await expect(waiting).resolves.toMatchObject({ token: 2 });
  });

  it('close wakes a waiting lock() with STORE_CLOSED', async () => {
    const store = new MemoryStore();
    await store.lock('l');
    const waiting = store.lock('l');
    await store.close();
    await expect(waiting).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('validates its options eagerly', () => {
    expect(() => new MemoryStore({ clock: 5 as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });

  it('rejects a non-positive or non-finite ttlMs with INVALID_OPTION', async () => {
    const store = new MemoryStore();
    for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(store.tryLock('l', { ttlMs })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        details: { option: 'ttlMs' },
      });
    }
  });
});
