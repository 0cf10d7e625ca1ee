// GenerationPool, the lifecycle under RotatingAgent, RotatingDispatcher and the rotating gRPC
// client: members here are plain records whose drain the test ends when it chooses, so every
// step (retire, drain, grace, close, destroy) is observed in order, never timed.
import { describe, expect, it } from 'vitest';
import { GenerationPool } from '../../src/mtls/generation-pool.js';

interface Member {
  name: string;
  drains: number;
  destroyed: (Error | null)[];
  /** Ends the member's drain (its last request finished). */
  finish(): void;
  /** The signal the pool passed to drain. */
  forced?: AbortSignal;
}

function member(name: string): Member {
  let finish!: () => void;
  const drained = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const m: Member = { name, drains: 0, destroyed: [], finish };
  drainedOf.set(m, drained);
  return m;
}
const drainedOf = new WeakMap<Member, Promise<void>>();

function pool(
  graceMs = 60_000,
  hooks: { drainFails?: boolean; destroyThrows?: boolean; onDestroy?: (m: Member) => void } = {},
) {
  const events: string[] = [];
  const p = new GenerationPool<Member>({
    name: 'the test pool',
    graceMs,
    drain: async (m, forced) => {
      m.drains++;
      m.forced = forced;
      events.push(`drain ${m.name}`);
      if (hooks.drainFails) throw new Error('drain failed');
      await Promise.race([
        drainedOf.get(m),
        new Promise((resolve) => forced.addEventListener('abort', resolve, { once: true })),
      ]);
      events.push(`drained ${m.name}`);
    },
    destroy: (m, reason) => {
      m.destroyed.push(reason);
      events.push(`destroy ${m.name}`);
      hooks.onDestroy?.(m);
      if (hooks.destroyThrows) throw new Error('destroy failed');
    },
  });
  return { p, events };
}

const settled = (promise: Promise<unknown>) => {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
};
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GenerationPool', () => {
  it('one member per key: the same key gets the same member, a new key retires the previous one', async () => {
    const { p, events } = pool();
    const a = member('a');
    const b = member('b');
    expect(p.acquire('1', () => a)).toBe(a);
    expect(p.acquire('1', () => member('unused'))).toBe(a);
    expect(p.acquire('2', () => b)).toBe(b);
    expect(p.current).toBe(b);
    expect(p.size).toBe(2);
    expect(events).toEqual(['drain a']);
    a.finish();
    await tick();
    expect(p.size).toBe(1);
    expect(events).toEqual(['drain a', 'drained a']);
    expect(a.destroyed).toEqual([]); // drained, never destroyed
  });

  it('a build that throws changes nothing', () => {
    const { p } = pool();
    const a = member('a');
    p.acquire('1', () => a);
    expect(() =>
      p.acquire('2', () => {
        throw new Error('bad CA');
      }),
    ).toThrow('bad CA');
    expect(p.current).toBe(a);
    expect(p.size).toBe(1);
  });

  it('a retired member still draining when the grace ends is destroyed, and its drain told to stop', async () => {
    let destroyedOne!: (m: Member) => void;
    const destroyed = new Promise<Member>((resolve) => {
      destroyedOne = resolve;
    });
    const { p, events } = pool(0, { onDestroy: (m) => destroyedOne(m) });
    const a = member('a');
    p.acquire('1', () => a);
    p.acquire('2', () => member('b'));
    expect(await destroyed).toBe(a);
    await tick();
    expect(p.size).toBe(1);
    expect(a.destroyed).toEqual([null]);
    expect(a.forced?.aborted).toBe(true);
    expect(events).toEqual(['drain a', 'destroy a', 'drained a']);
  });

  it('close(): no new work (AGENT_CLOSED), the current member drains, and close resolves only then; idempotent', async () => {
    const { p } = pool();
    const a = member('a');
    p.acquire('1', () => a);
    const closing = p.close();
    const state = settled(closing);
    expect(p.closed).toBe(true);
    expect(p.signal.aborted).toBe(true);
    expect(p.close()).toBe(closing);
    expect(() => p.acquire('1', () => a)).toThrow(
      expect.objectContaining({ code: 'AGENT_CLOSED', message: 'the test pool is closed' }),
    );
    expect(() => p.assertOpen()).toThrow(expect.objectContaining({ code: 'AGENT_CLOSED' }));
    await tick();
    expect(state.done).toBe(false); // a's last request is still running
    expect(p.size).toBe(1);
    a.finish();
    await closing;
    expect(p.size).toBe(0);
    expect(a.drains).toBe(1);
    expect(a.destroyed).toEqual([]);
  });

  it('destroy(): every member, current and retiring, is destroyed now with the reason; once each; idempotent', async () => {
    const { p } = pool();
    const a = member('a');
    const b = member('b');
    p.acquire('1', () => a);
    p.acquire('2', () => b);
    const reason = new Error('shutting down');
    const destroying = p.destroy(reason);
    expect(p.destroy()).toBe(destroying);
    await destroying;
    expect(a.destroyed).toEqual([reason]);
    expect(b.destroyed).toEqual([reason]);
    expect(p.size).toBe(0);
    await p.destroy();
    expect(a.destroyed).toHaveLength(1);
    expect(() => p.acquire('3', () => member('c'))).toThrow(
      expect.objectContaining({ code: 'AGENT_CLOSED' }),
    );
  });

  it('destroy() during close(): the pending close resolves once the members are destroyed; close() after destroy() too', async () => {
    const { p } = pool();
    const a = member('a');
    p.acquire('1', () => a);
    const closing = p.close();
    await tick();
    expect(a.destroyed).toEqual([]);
    await p.destroy();
    await closing;
    expect(a.destroyed).toEqual([null]);
    expect(p.size).toBe(0);

    const { p: other } = pool();
    const b = member('b');
    other.acquire('1', () => b);
    await other.destroy();
    await other.close();
    expect(b.destroyed).toEqual([null]);
    expect(b.drains).toBe(1); // retired (drain started) then forced
  });

  it('a drain that fails leaves the member in an unknown state: it is destroyed', async () => {
    const { p } = pool(60_000, { drainFails: true });
    const a = member('a');
    p.acquire('1', () => a);
    await p.close();
    expect(a.destroyed).toEqual([null]);
  });

  it('a destroy that throws does not break close() or destroy()', async () => {
    const { p } = pool(60_000, { destroyThrows: true });
    const a = member('a');
    p.acquire('1', () => a);
    await expect(p.destroy()).resolves.toBeUndefined();
    await expect(p.close()).resolves.toBeUndefined();
    expect(a.destroyed).toEqual([null]);
  });

  it('a pool closed with nothing in it resolves at once', async () => {
    const { p } = pool();
    await p.close();
    await p.destroy();
    expect(p.size).toBe(0);
  });
});
