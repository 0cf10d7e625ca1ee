import { describe, expect, it, vi } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { withLock } from '../../src/store/with-lock.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('withLock', () => {
  it('runs fn holding the lock, returns its value and releases', async () => {
    const store = new MemoryStore();
    const result = await withLock(store, 'job', async (lease, signal) => {
      expect(lease.name).toBe('job');
      expect(signal.aborted).toBe(false);
      expect(await store.tryLock('job')).toBeNull();
      return 42;
    });
    expect(result).toBe(42);
    expect(await store.tryLock('job')).not.toBeNull();
  });

  it('releases when fn throws and rethrows fn’s error', async () => {
    const store = new MemoryStore();
    const boom = new Error('boom');
    await expect(
      withLock(store, 'job', async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await store.tryLock('job')).not.toBeNull();
  });

  it('renews every ttl/3 so long work keeps the lock past its TTL', async () => {
    const store = new MemoryStore();
    const renew = vi.spyOn(store, 'renewLock');
    await withLock(
      store,
      'long',
      async (_lease, signal) => {
        for (let i = 0; i < 5; i++) {
          await sleep(100);
          expect(await store.tryLock('long', { ttlMs: 10_000 })).toBeNull();
        }
        expect(signal.aborted).toBe(false);
      },
      { ttlMs: 240 },
    );
    // 500 ms of work with a renewal every 80 ms.
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(4);
    expect(await store.tryLock('long')).not.toBeNull();
  });

  it('aborts fn’s signal with LOCK_LOST when the lease is taken over', async () => {
    let skew = 0;
    const store = new MemoryStore({ clock: () => Date.now() + skew });
    let reason: unknown;
    let thief: number | undefined;
    await withLock(
      store,
      'stolen',
      async (lease, signal) => {
        // Time jumps past the lease (a stalled process); another replica takes the lock.
        skew = 10_000;
        thief = (await store.tryLock('stolen', { ttlMs: 60_000 }))?.token;
        expect(thief).toBeGreaterThan(lease.token);
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        reason = signal.reason;
      },
      { ttlMs: 300 },
    );
    expect(reason).toMatchObject({ code: 'LOCK_LOST' });
    // withLock's unlock of the lost lease must not release the thief's lock.
    expect(await store.tryLock('stolen')).toBeNull();
  });

  it('retries a transient renewal failure without aborting fn', async () => {
    const store = new MemoryStore();
    const real = store.renewLock.bind(store);
    let failures = 1;
    vi.spyOn(store, 'renewLock').mockImplementation(async (lease, ttl) => {
      if (failures-- > 0) throw new CertkeeperError('STORE_IO', 'transient');
      return real(lease, ttl);
    });
    await withLock(
      store,
      'flaky',
      async (_lease, signal) => {
        await sleep(350);
        expect(signal.aborted).toBe(false);
        expect(await store.tryLock('flaky', { ttlMs: 10_000 })).toBeNull();
      },
      { ttlMs: 300 },
    );
  });

  it('aborts fn when renewals keep failing until the lease runs out', async () => {
    const store = new MemoryStore();
    vi.spyOn(store, 'renewLock').mockRejectedValue(new CertkeeperError('STORE_IO', 'backend down'));
    const started = Date.now();
    const reason = await withLock(
      store,
      'down',
      (_lease, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve(signal.reason), { once: true }),
        ),
      { ttlMs: 300 },
    );
    expect(reason).toMatchObject({ code: 'LOCK_LOST' });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('rejects with LOCK_ABORTED when the signal aborts while waiting, without running fn', async () => {
    const store = new MemoryStore();
    await store.lock('busy');
    const fn = vi.fn(async () => 1);
    await expect(withLock(store, 'busy', fn, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({
      code: 'LOCK_ABORTED',
    });
    expect(fn).not.toHaveBeenCalled();
  });

  it('forwards an abort of the caller’s signal to fn and still releases', async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const seen = await withLock(
      store,
      'job',
      async (_lease, signal) => {
        setTimeout(() => controller.abort(new Error('shutdown')), 20);
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        return (signal.reason as Error).message;
      },
      { signal: controller.signal },
    );
    expect(seen).toBe('shutdown');
    expect(await store.tryLock('job')).not.toBeNull();
  });

  it('waits for a renewal in flight before unlocking, so the release is not undone', async () => {
    const store = new MemoryStore();
    const order: string[] = [];
    const real = { renew: store.renewLock.bind(store), unlock: store.unlock.bind(store) };
    vi.spyOn(store, 'renewLock').mockImplementation(async (lease, ttl) => {
      order.push('renew:start');
      await sleep(100);
      order.push('renew:end');
      return real.renew(lease, ttl);
    });
    vi.spyOn(store, 'unlock').mockImplementation(async (lease) => {
      order.push('unlock');
      return real.unlock(lease);
    });
    // ttl 150: renewal starts at 50 ms and is still running when fn returns at 80 ms.
    await withLock(store, 'job', () => sleep(80), { ttlMs: 150 });
    expect(order.slice(0, 3)).toEqual(['renew:start', 'renew:end', 'unlock']);
  });

  it('throws an unlock failure when fn succeeded, but never hides fn’s own error', async () => {
    const failing = (store: MemoryStore): Store => {
      vi.spyOn(store, 'unlock').mockRejectedValue(new CertkeeperError('STORE_IO', 'unlock failed'));
      return store;
    };
    await expect(withLock(failing(new MemoryStore()), 'a', async () => 1)).rejects.toMatchObject({
      code: 'STORE_IO',
    });
    const own = new Error('own');
    await expect(
      withLock(failing(new MemoryStore()), 'a', async () => {
        throw own;
      }),
    ).rejects.toBe(own);
  });

  it('gives an unlock failure after success to onReleaseError instead of throwing it', async () => {
    const store = new MemoryStore();
    vi.spyOn(store, 'unlock').mockRejectedValue(new CertkeeperError('STORE_IO', 'unlock failed'));
    const seen: unknown[] = [];
    await expect(withLock(store, 'a', async () => 7, { onReleaseError: (e) => seen.push(e) })).resolves.toBe(
      7,
    );
    expect(seen).toMatchObject([{ code: 'STORE_IO' }]);
  });

  it('validates ttlMs before touching the store', async () => {
    const store = new MemoryStore();
    await expect(withLock(store, 'a', async () => 1, { ttlMs: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    expect(await store.tryLock('a')).not.toBeNull();
  });
});
