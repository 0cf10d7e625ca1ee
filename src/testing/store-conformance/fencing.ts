/**
 * Fenced writes: a `put` or `delete` with `{ fence: lease }` lands only while that lease is the
 * current one of its lock, checked in the same step as the write (see "Fenced writes" in
 * `store/store.ts`). The tests play the stalled holder: its lease lapses, the next holder commits,
 * and the stale holder's writes must be refused without touching what the next holder wrote.
 */
import type { LockLease, Store } from '../../store/store.js';
import { type Kit, LONG, sleep, text } from './kit.js';

export function fencingTests({ test, expect, sut, other, rejectsWith, until, short, slack }: Kit): void {
  /** Takes `name` from `store` as soon as `held` lapses (polling: takeover needs no release). */
  async function takeOver(store: Store, name: string, until: Kit['until']): Promise<LockLease> {
    let lease: LockLease | null = null;
    await until(async () => {
      lease = await store.tryLock(name, { ttlMs: LONG });
      return lease !== null;
    }, `the lapsed lease of "${name}" to be taken over`);
    return lease!;
  }

  test('a fenced put or delete by the current holder lands, with the lease from lock() or renewLock()', async () => {
    const { store } = sut();
    const lease = await store.lock('fenced/holder', { ttlMs: LONG });
    await store.put('fenced/value', 'one', { fence: lease });
    expect(text(await store.get('fenced/value'))).toBe('one');
    const renewed = await store.renewLock(lease);
    await store.put('fenced/value', 'two', { fence: renewed });
    expect(text(await store.get('fenced/value'))).toBe('two');
    // A renewal extends the same acquisition: the lease object from before it still names it.
    await store.put('fenced/value', 'three', { fence: lease });
    expect(text(await store.get('fenced/value'))).toBe('three');
    expect(await store.delete('fenced/value', { fence: lease })).toBe(true);
    expect(await store.delete('fenced/value', { fence: lease })).toBe(false);
    expect(await store.get('fenced/value')).toBeNull();
    expect(await store.unlock(lease)).toBe(true);
  });

  test('a holder whose lease lapsed and was taken over can neither overwrite nor delete the next holder’s commit', async (context) => {
    const { store } = sut();
    const next = await other(context);
    const stale = (await store.tryLock('fenced/commit', { ttlMs: short }))!;
    await store.put('fenced/current', 'stale holder, in time', { fence: stale });
    const fresh = await takeOver(next, 'fenced/commit', until);
    expect(fresh.token).toBeGreaterThan(stale.token);
    expect(text(await next.get('fenced/current')), 'the next holder sees the earlier commit').toBe(
      'stale holder, in time',
    );
    await next.put('fenced/current', 'next holder', { fence: fresh });
    await rejectsWith(() => store.put('fenced/current', 'stale holder, late', { fence: stale }), 'LOCK_LOST');
    await rejectsWith(() => store.delete('fenced/current', { fence: stale }), 'LOCK_LOST');
    await rejectsWith(
      () => store.put('fenced/elsewhere', 'stale holder, late', { fence: stale }),
      'LOCK_LOST',
    );
    expect(text(await next.get('fenced/current'))).toBe('next holder');
    expect(text(await store.get('fenced/current'))).toBe('next holder');
    expect(await next.get('fenced/elsewhere')).toBeNull();
    // The refusals did not disturb the new holder.
    await next.put('fenced/current', 'next holder, again', { fence: fresh });
    expect(text(await next.get('fenced/current'))).toBe('next holder, again');
    expect(await next.unlock(fresh)).toBe(true);
  });

  test('a fenced write with a released or lapsed lease is refused, even when nobody took the lock', async () => {
    const { store } = sut();
    const released = (await store.tryLock('fenced/released', { ttlMs: LONG }))!;
    expect(await store.unlock(released)).toBe(true);
    await rejectsWith(() => store.put('fenced/r', 'late', { fence: released }), 'LOCK_LOST');
    const lapsed = (await store.tryLock('fenced/lapsed', { ttlMs: short }))!;
    await store.put('fenced/l', 'in time', { fence: lapsed });
    await sleep(short + slack);
    await rejectsWith(() => store.put('fenced/l', 'late', { fence: lapsed }), 'LOCK_LOST');
    await rejectsWith(() => store.delete('fenced/l', { fence: lapsed }), 'LOCK_LOST');
    expect(await store.get('fenced/r')).toBeNull();
    expect(text(await store.get('fenced/l'))).toBe('in time');
  });

  test('a fence names one acquisition: another lock’s lease, another owner or an unissued token is refused', async (context) => {
    const { store } = sut();
    const next = await other(context);
    const x = (await store.tryLock('fenced/x', { ttlMs: LONG }))!;
    const y = (await next.tryLock('fenced/y', { ttlMs: LONG }))!;
    const forged: LockLease[] = [
      { ...x, name: 'fenced/y' },
      // The right name and token of the current holder: only the owner tells them apart.
      { ...x, name: 'fenced/y', token: y.token },
      { ...y, owner: x.owner },
      { ...y, token: y.token + 1 },
      { ...x, name: 'fenced/never-locked' },
    ];
    for (const fence of forged) {
      await rejectsWith(() => store.put('fenced/y-value', 'forged', { fence }), 'LOCK_LOST');
      await rejectsWith(() => next.put('fenced/y-value', 'forged', { fence }), 'LOCK_LOST');
    }
    expect(await next.get('fenced/y-value')).toBeNull();
    await next.put('fenced/y-value', 'the holder of y', { fence: y });
    for (const fence of forged)
      await rejectsWith(() => store.delete('fenced/y-value', { fence }), 'LOCK_LOST');
    expect(text(await store.get('fenced/y-value'))).toBe('the holder of y');
  });

  test('racing a takeover, the stale holder’s writes stop before the next holder commits', async (context) => {
    const { store } = sut();
    const next = await other(context);
    const stale = (await store.tryLock('fenced/race', { ttlMs: short }))!;
    let landed = 0;
    const staleWriter = (async () => {
      for (;;) {
        try {
          await store.put('fenced/race-value', `stale ${landed}`, { fence: stale });
          landed++;
          await sleep(1); // a store that answers synchronously would starve the takeover
        } catch (error) {
          return (error as { code?: unknown }).code;
        }
      }
    })();
    const fresh = await takeOver(next, 'fenced/race', until);
    await next.put('fenced/race-value', 'next holder', { fence: fresh });
    expect(await staleWriter).toBe('LOCK_LOST');
    expect(landed, 'the stale holder wrote while it held the lock').toBeGreaterThan(0);
    expect(text(await next.get('fenced/race-value'))).toBe('next holder');
  });

  test('a fence that is not a lease is refused with INVALID_OPTION and writes nothing', async () => {
    const { store } = sut();
    for (const fence of ['lease', 42, { name: 'fenced/x' }, { name: 'fenced/x', token: 1 }]) {
      await rejectsWith(() => store.put('fenced/bad', 'v', { fence: fence as never }), 'INVALID_OPTION');
      await rejectsWith(() => store.delete('fenced/bad', { fence: fence as never }), 'INVALID_OPTION');
    }
    expect(await store.get('fenced/bad')).toBeNull();
  });
}
