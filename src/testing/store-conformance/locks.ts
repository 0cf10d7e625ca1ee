/**
 * Locks: leases, takeover, renewal, release, fencing tokens and waiting (see "Locks" in
 * `store/store.ts`).
 */
import type { LockLease } from '../../store/store.js';
import { type Kit, LONG, sleep, text } from './kit.js';

export function lockTests({ test, expect, sut, second, rejectsWith, short, slack, timeout }: Kit): void {
  test('tryLock is exclusive per name and returns a well-formed lease', async () => {
    const before = Date.now();
    const a = await sut().store.tryLock('locks/a', { ttlMs: LONG });
    expect(a).not.toBeNull();
    expect(a!.name).toBe('locks/a');
    expect(typeof a!.owner).toBe('string');
    expect(a!.owner.length).toBeGreaterThan(0);
    expect(Number.isFinite(a!.token)).toBe(true);
    // Epoch milliseconds, about ttl from now (loose: the backend may use its own clock).
    expect(a!.expiresAt).toBeGreaterThan(before + LONG - 60_000);
    expect(a!.expiresAt).toBeLessThan(Date.now() + LONG + 60_000);
    expect(await sut().store.tryLock('locks/a', { ttlMs: LONG })).toBeNull();
    const other = await sut().store.tryLock('locks/b', { ttlMs: LONG });
    expect(other, 'different names are independent').not.toBeNull();
    expect(await sut().store.unlock(a!)).toBe(true);
    const again = await sut().store.tryLock('locks/a', { ttlMs: LONG });
    expect(again).not.toBeNull();
    expect(again!.token).toBeGreaterThan(a!.token);
  });

  test('lock() waits while the lock is held and gets it promptly after unlock', async () => {
    const a = await sut().store.lock('wait', { ttlMs: LONG });
    let got: LockLease | undefined;
    const waiting = sut()
      .store.lock('wait', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) })
      .then((lease) => {
        got = lease;
        return lease;
      });
    await sleep(200);
    expect(got, 'lock() returned while the lock was held').toBeUndefined();
    const released = Date.now();
    expect(await sut().store.unlock(a)).toBe(true);
    const b = await waiting;
    expect(Date.now() - released).toBeLessThan(2_000);
    expect(b.token).toBeGreaterThan(a.token);
  });

  test('fencing tokens strictly increase across acquire, release and takeover', async () => {
    const tokens: number[] = [];
    const t1 = (await sut().store.tryLock('fence', { ttlMs: LONG }))!;
    tokens.push(t1.token);
    expect(await sut().store.unlock(t1)).toBe(true);
    expect(await sut().store.unlock(t1), 'a second unlock is a no-op').toBe(false);
    const t2 = await sut().store.lock('fence', { ttlMs: LONG });
    tokens.push(t2.token);
    await sut().store.unlock(t2);
    const t3 = (await sut().store.tryLock('fence', { ttlMs: short }))!;
    tokens.push(t3.token);
    await sleep(short + slack);
    const t4 = (await sut().store.tryLock('fence', { ttlMs: LONG }))!;
    expect(t4, 'a lapsed lease is taken over').not.toBeNull();
    tokens.push(t4.token);
    await sut().store.unlock(t4);
    const t5 = await sut().store.lock('fence', { ttlMs: LONG });
    tokens.push(t5.token);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });

  test('a lapsed lease is taken over by tryLock', async () => {
    const a = (await sut().store.tryLock('lapse', { ttlMs: short }))!;
    expect(await sut().store.tryLock('lapse', { ttlMs: LONG })).toBeNull();
    await sleep(short + slack);
    const b = await sut().store.tryLock('lapse', { ttlMs: LONG });
    expect(b).not.toBeNull();
    expect(b!.token).toBeGreaterThan(a.token);
  });

  test('a waiting lock() takes over a lease that lapses without unlock', async () => {
    const started = Date.now();
    const a = (await sut().store.tryLock('lapse-wait', { ttlMs: short }))!;
    const b = await sut().store.lock('lapse-wait', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) });
    const waited = Date.now() - started;
    expect(waited, 'lock() returned before the lease lapsed').toBeGreaterThanOrEqual(short - 50);
    expect(waited).toBeLessThan(short + 2_000);
    expect(b.token).toBeGreaterThan(a.token);
  });

  test('renewLock keeps a lease from being taken over past its original TTL', async () => {
    let lease = (await sut().store.tryLock('renew', { ttlMs: short }))!;
    const original = lease.expiresAt;
    const started = Date.now();
    while (Date.now() - started < short * 2) {
      await sleep(short / 3);
      lease = await sut().store.renewLock(lease);
      expect(await sut().store.tryLock('renew', { ttlMs: LONG })).toBeNull();
    }
    expect(lease.expiresAt).toBeGreaterThan(original);
    expect(lease.name).toBe('renew');
    const longer = await sut().store.renewLock(lease, LONG);
    expect(longer.expiresAt).toBeGreaterThan(Date.now() + LONG / 2);
    await sleep(short + slack);
    expect(await sut().store.tryLock('renew', { ttlMs: LONG }), 'renewed with a longer TTL').toBeNull();
    expect(await sut().store.unlock(longer)).toBe(true);
  });

  test('renewLock of a lease that was taken over or released throws LOCK_LOST', async () => {
    const a = (await sut().store.tryLock('lost', { ttlMs: short }))!;
    await sleep(short + slack);
    const b = (await sut().store.tryLock('lost', { ttlMs: LONG }))!;
    expect(b).not.toBeNull();
    await rejectsWith(() => sut().store.renewLock(a), 'LOCK_LOST');
    expect(await sut().store.unlock(b)).toBe(true);
    await rejectsWith(() => sut().store.renewLock(b), 'LOCK_LOST');
  });

  test('unlock of a lease that was taken over returns false and leaves the new holder', async () => {
    const a = (await sut().store.tryLock('steal', { ttlMs: short }))!;
    await sleep(short + slack);
    const b = (await sut().store.tryLock('steal', { ttlMs: LONG }))!;
    expect(b).not.toBeNull();
    expect(await sut().store.unlock(a)).toBe(false);
    expect(await sut().store.tryLock('steal', { ttlMs: LONG }), 'the new holder still holds it').toBeNull();
    expect(await sut().store.renewLock(b)).toMatchObject({ token: b.token });
    expect(await sut().store.unlock(b)).toBe(true);
  });

  test('lock() with an already-aborted signal rejects with LOCK_ABORTED at once', async () => {
    await sut().store.lock('abort', { ttlMs: LONG });
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const started = Date.now();
    await rejectsWith(
      () => sut().store.lock('abort', { ttlMs: LONG, signal: controller.signal }),
      'LOCK_ABORTED',
    );
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  test('lock() aborted while waiting rejects with LOCK_ABORTED promptly and takes nothing', async () => {
    const a = await sut().store.lock('abort-wait', { ttlMs: LONG });
    const controller = new AbortController();
    const waiting = sut().store.lock('abort-wait', { ttlMs: LONG, signal: controller.signal });
    await sleep(150);
    const aborted = Date.now();
    controller.abort();
    await rejectsWith(() => waiting, 'LOCK_ABORTED');
    expect(Date.now() - aborted).toBeLessThan(1_000);
    expect(await sut().store.unlock(a)).toBe(true);
    await sleep(300);
    expect(
      await sut().store.tryLock('abort-wait', { ttlMs: LONG }),
      'the aborted waiter took the lock',
    ).not.toBeNull();
  });

  test('many concurrent contenders never overlap and all get distinct tokens', async (context) => {
    const stores = [sut().store];
    if (sut().second) stores.push(await second(context));
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
    const other = await second(context);
    await sut().store.put('shared/value', 'from the first');
    expect(text(await other.get('shared/value'))).toBe('from the first');
    const a = (await sut().store.tryLock('shared', { ttlMs: LONG }))!;
    expect(await other.tryLock('shared', { ttlMs: LONG })).toBeNull();
    const waiting = other.lock('shared', { ttlMs: LONG, signal: AbortSignal.timeout(timeout / 2) });
    await sleep(100);
    expect(await sut().store.unlock(a)).toBe(true);
    const b = await waiting;
    expect(b.token).toBeGreaterThan(a.token);
    expect(await sut().store.tryLock('shared', { ttlMs: LONG })).toBeNull();
    expect(await other.unlock(b)).toBe(true);
    expect(await sut().store.tryLock('shared', { ttlMs: LONG })).not.toBeNull();
  });
}
