/**
 * Change notification, for stores that have `watch` (see "Change notification" in
 * `store/store.ts`). Absence of an event is never waited for by the clock: a second listener on
 * the same store, or a later write, is the sentinel. Notifications of one connection arrive in
 * commit order, so once the sentinel's event has arrived, an earlier one that did not never will.
 */
import type { Store, StoreChange, StoreChangeListener } from '../../store/store.js';
import type { Kit } from './kit.js';

/** A listener that records what it is told. */
function recorder(): { seen: StoreChange[]; listener: StoreChangeListener; keys: () => string[] } {
  const seen: StoreChange[] = [];
  return {
    seen,
    listener: (change) => seen.push(change),
    keys: () => seen.flatMap((change) => (change.type === 'change' ? [change.key] : [])),
  };
}

export function watchTests({ test, expect, sut, second, other, rejectsWith, until }: Kit): void {
  /** The store under test, when it can watch; skips the test otherwise. */
  function watching(skip: (note: string) => void): Store & Required<Pick<Store, 'watch'>> {
    const { store } = sut();
    if (typeof store.watch !== 'function') skip('the store has no watch (an optional capability)');
    return store as Store & Required<Pick<Store, 'watch'>>;
  }

  test('watch: puts and deletes through another client reach the listener, filtered by prefix segment-wise', async (context) => {
    const store = watching(context.skip);
    const writer = await other(context);
    const below = recorder();
    const all = recorder();
    await store.watch('w/i', below.listener);
    await store.watch('', all.listener);
    await writer.put('w/i/a', '1');
    await writer.put('w/ix/a', 'a sibling whose name starts with the prefix');
    await writer.put('w/other', '1');
    await writer.put('w/i', 'the prefix itself is a key');
    await writer.put('w/i/deep/er/key', '1');
    await writer.delete('w/i/a');
    await writer.delete('w/i/never-existed');
    await writer.put('w/end', 'sentinel');
    await until(() => all.keys().includes('w/end'), 'the sentinel change');
    expect(below.seen).toEqual([
      { type: 'change', key: 'w/i/a' },
      { type: 'change', key: 'w/i' },
      { type: 'change', key: 'w/i/deep/er/key' },
      { type: 'change', key: 'w/i/a' },
    ]);
    expect(all.keys()).toEqual(['w/i/a', 'w/ix/a', 'w/other', 'w/i', 'w/i/deep/er/key', 'w/i/a', 'w/end']);
  });

  test('watch: writes through the watching client itself are reported too, fenced ones included', async (context) => {
    const store = watching(context.skip);
    const own = recorder();
    await store.watch('w', own.listener);
    const lease = (await store.tryLock('w-lock', { ttlMs: 10_000 }))!;
    await store.put('w/own', '1');
    await store.put('w/fenced', '1', { fence: lease });
    await store.delete('w/fenced', { fence: lease });
    await until(() => own.keys().length >= 3, 'three changes');
    expect(own.keys()).toEqual(['w/own', 'w/fenced', 'w/fenced']);
  });

  test('watch: a refused fenced write is not reported', async (context) => {
    const store = watching(context.skip);
    const own = recorder();
    await store.watch('w', own.listener);
    const released = (await store.tryLock('w-lock', { ttlMs: 10_000 }))!;
    await store.unlock(released);
    await rejectsWith(() => store.put('w/refused', '1', { fence: released }), 'LOCK_LOST');
    await store.put('w/end', 'sentinel');
    await until(() => own.keys().includes('w/end'), 'the sentinel change');
    expect(own.keys()).toEqual(['w/end']);
  });

  test('watch: the function it resolves to stops that listener only, and may be called again', async (context) => {
    const store = watching(context.skip);
    const writer = await other(context);
    const stopped = recorder();
    const kept = recorder();
    const stop = await store.watch('w', stopped.listener);
    await store.watch('w', kept.listener);
    await writer.put('w/before', '1');
    await until(() => kept.keys().includes('w/before'), 'the first change');
    stop();
    stop();
    await writer.put('w/after', '1');
    await until(() => kept.keys().includes('w/after'), 'the second change');
    expect(stopped.keys()).toEqual(['w/before']);
  });

  test('watch: a listener that throws does not keep the others from being told', async (context) => {
    const store = watching(context.skip);
    const writer = await other(context);
    const kept = recorder();
    let thrown = 0;
    await store.watch('w', () => {
      thrown++;
      throw new Error('a broken listener');
    });
    await store.watch('w', kept.listener);
    await writer.put('w/one', '1');
    await writer.put('w/two', '1');
    await until(() => kept.keys().length >= 2, 'both changes');
    expect(kept.keys()).toEqual(['w/one', 'w/two']);
    expect(thrown).toBe(2);
  });

  test('watch: close() stops every listener of that store; watch() on it then rejects with STORE_CLOSED', async (context) => {
    const store = watching(context.skip);
    const writer = await second(context);
    const closed = recorder();
    await store.watch('', closed.listener);
    await store.watch('w', closed.listener);
    const sentinel = recorder();
    if (!writer.watch) return expect.fail('a second client of a store with watch has no watch');
    await writer.watch('w', sentinel.listener);
    await writer.put('w/before', '1');
    await until(() => closed.keys().length >= 2, 'the change before close, for both listeners');
    await store.close();
    await writer.put('w/after', '1');
    await until(() => sentinel.keys().includes('w/after'), 'the change after close, at the other client');
    expect(closed.keys()).toEqual(['w/before', 'w/before']);
    await rejectsWith(() => store.watch('', () => {}), 'STORE_CLOSED');
  });

  test('watch: after the notification connection is lost and back, listeners get a resync and changes flow again', async (context) => {
    const store = watching(context.skip);
    const { interruptWatch } = sut();
    if (!interruptWatch) return context.skip('the factory has no interruptWatch(): resync test skipped');
    const writer = await other(context);
    const seen = recorder();
    await store.watch('w', seen.listener);
    await writer.put('w/before', '1');
    await until(() => seen.keys().includes('w/before'), 'the change before the interruption');
    await interruptWatch();
    await until(() => seen.seen.some((change) => change.type === 'resync'), 'a resync after reconnecting');
    // Writes right after the resync are delivered: the store listens again before saying so.
    await writer.put('w/after', '1');
    await until(() => seen.keys().includes('w/after'), 'the change after the reconnect');
    expect(seen.seen).toContainEqual({ type: 'resync' });
  });

  test('watch refuses a hostile prefix with INVALID_STORE_KEY and a listener that is not a function with INVALID_OPTION', async (context) => {
    const store = watching(context.skip);
    for (const prefix of ['../x', '/abs', 'a//b', 'a/', 'a\0b']) {
      await rejectsWith(() => store.watch(prefix, () => {}), 'INVALID_STORE_KEY');
    }
    await rejectsWith(() => store.watch('w', 'not a function' as never), 'INVALID_OPTION');
  });
}
