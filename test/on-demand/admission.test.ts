import { describe, expect, it } from 'vitest';
import { isCertkeeperError } from '../../src/errors.js';
import { Admission, type DecideFunction } from '../../src/on-demand/admission.js';
import { registeredDomain } from '../../src/on-demand/budgets.js';
import { type OnDemandEvent, OnDemandEvents } from '../../src/on-demand/events.js';
import { type OnDemandLimits, resolveLimits } from '../../src/on-demand/limits.js';
import { FakeClock } from '../../src/testing/fake-clock.js';

function setup(decide: DecideFunction, limits: OnDemandLimits = {}) {
  const clock = new FakeClock();
  const events = new OnDemandEvents();
  const seen: OnDemandEvent[] = [];
  events.on((e) => seen.push(e));
  const admission = new Admission(decide, resolveLimits(limits), clock, events);
  return { clock, events, seen, admission };
}

const yes: DecideFunction = () => true;
const never = new AbortController().signal;

describe('admission: names and the decision', () => {
  it('refuses hostile names with INVALID_NAME before asking the decision function', async () => {
    let asked = 0;
    const { admission, events } = setup(() => ++asked > 0);
    const hostile = [
      '../etc',
      'a\u0000b.test',
      '*.wild.test',
      '127.0.0.1',
      'x'.repeat(300),
      '',
      'a..b.test',
      'a/b.test',
    ];
    for (const name of hostile) {
      const verdict = await admission.admit(name);
      expect(verdict.ok, name).toBe(false);
      if (verdict.ok) continue;
      expect(verdict.reason).toBe('invalid-name');
      expect(isCertkeeperError(verdict.error, 'INVALID_NAME'), name).toBe(true);
    }
    expect(asked).toBe(0);
    expect(events.counts.denied['invalid-name']).toBe(hostile.length);
  });

  it('normalises the name and hands the decision the client facts', async () => {
    const calls: unknown[] = [];
    const { admission, seen } = setup((name, info) => {
      calls.push({
        name,
        clientIp: info.clientIp,
        serverName: info.serverName,
        signal: info.signal instanceof AbortSignal,
      });
      return true;
    });
    const verdict = await admission.admit('Shop.Example.COM.', {
      clientIp: '192.0.2.7',
      serverName: 'Shop.Example.COM.',
    });
    expect(verdict).toEqual({ ok: true, name: 'shop.example.com' });
    expect(calls).toEqual([
      { name: 'shop.example.com', clientIp: '192.0.2.7', serverName: 'Shop.Example.COM.', signal: true },
    ]);
    expect(seen).toEqual([{ type: 'allowed', name: 'shop.example.com', clientIp: '192.0.2.7' }]);
  });

  it('remembers a "no" for deniedTtlMs without asking again, then asks again', async () => {
    let asked = 0;
    const { admission, clock } = setup(
      () => {
        asked++;
        return false;
      },
      { deniedTtlMs: 60_000 },
    );
    expect(await admission.admit('no.test')).toMatchObject({ ok: false, reason: 'decided-no' });
    expect(await admission.admit('no.test')).toMatchObject({ ok: false, reason: 'denied-cached' });
    expect(asked).toBe(1);
    await clock.advance(60_001);
    expect(await admission.admit('no.test')).toMatchObject({ ok: false, reason: 'decided-no' });
    expect(asked).toBe(2);
  });

  it('counts only a literal true as yes; a throw and a rejection are no', async () => {
    const answers: DecideFunction[] = [
      () => 'yes' as unknown as boolean,
      () => {
        throw new Error('boom');
      },
      async () => {
        throw new Error('boom');
      },
    ];
    const reasons = [];
    for (const decide of answers)
      reasons.push(((await setup(decide).admission.admit('a.test')) as { reason: string }).reason);
    expect(reasons).toEqual(['decided-no', 'decide-error', 'decide-error']);
  });

  it('a decision that never answers is a no at decideTimeoutMs, and its signal aborts', async () => {
    let signal: AbortSignal | undefined;
    const { admission, clock } = setup(
      (_name, info) => {
        signal = info.signal;
        return new Promise<boolean>(() => {});
      },
      { decideTimeoutMs: 500 },
    );
    const pending = admission.admit('hang.test');
    await clock.advance(499);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    expect(await pending).toMatchObject({ ok: false, reason: 'decide-timeout' });
    expect(signal?.aborted).toBe(true);
  });

  it('the denied-names memory is bounded', async () => {
    const { admission } = setup(() => false, { deniedMax: 100 });
    for (let i = 0; i < 1000; i++) await admission.admit(`n${i}.flood.test`);
    expect(admission.sizes.denied).toBe(100);
  });
});

describe('admission: budgets, slots and backoff', () => {
  it('registered domains come from the Public Suffix List, private section included', () => {
    expect(registeredDomain('a.b.example.co.uk')).toBe('example.co.uk');
    expect(registeredDomain('x.user1.github.io')).toBe('user1.github.io');
    expect(registeredDomain('localhost')).toBe('localhost');
  });

  it('keeps each registered domain within its budget over a sliding window', async () => {
    const { admission, clock, seen } = setup(yes, { perDomain: 3, perDomainWindowMs: 1000 });
    const take = (name: string) => admission.budgets.take(name, clock.now()).ok;
    expect([take('a.example.co.uk'), take('b.example.co.uk')]).toEqual([true, true]);
    await clock.advance(500);
    expect([take('c.example.co.uk'), take('d.example.co.uk'), take('a.other.co.uk')]).toEqual([
      true,
      false,
      true,
    ]);
    // The first two leave the window at 1000 ms after they were counted, not at a bucket edge.
    await clock.advance(499);
    expect(take('e.example.co.uk')).toBe(false);
    await clock.advance(1);
    expect([take('e.example.co.uk'), take('f.example.co.uk'), take('g.example.co.uk')]).toEqual([
      true,
      true,
      false,
    ]);
    const release = await admission.beginOrder('h.example.co.uk', never);
    expect(typeof release).not.toBe('function');
    expect(seen.at(-1)).toMatchObject({ type: 'denied', reason: 'domain-budget', name: 'h.example.co.uk' });
  });

  it('keeps all orders within the global budget', async () => {
    const { admission, clock } = setup(yes, { global: 5, globalWindowMs: 10_000 });
    const results = [];
    for (let i = 0; i < 8; i++) results.push(admission.budgets.take(`x${i}.d${i}.test`, clock.now()));
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect(results.at(-1)).toMatchObject({
      ok: false,
      reason: 'global-budget',
      retryAt: clock.now() + 10_000,
    });
  });

  it('bounds concurrent orders, queues a bounded line, and refuses beyond it', async () => {
    const { admission } = setup(yes, { concurrentOrders: 2, queuedOrders: 1 });
    const a = await admission.beginOrder('a.test', never);
    const b = await admission.beginOrder('b.test', never);
    const c = admission.beginOrder('c.test', never);
    const d = await admission.beginOrder('d.test', never);
    expect(d).toMatchObject({ ok: false, reason: 'queue-full' });
    expect(admission.sizes).toMatchObject({ running: 2, queued: 1 });
    (a as () => void)();
    expect(typeof (await c)).toBe('function');
    expect(admission.sizes).toMatchObject({ running: 2, queued: 0 });
    (b as () => void)();
    expect(admission.slots.peak).toBe(2);
  });

  it('a waiter whose handshake gives up leaves the line without a slot', async () => {
    const { admission } = setup(yes, { concurrentOrders: 1, queuedOrders: 5 });
    const first = (await admission.beginOrder('a.test', never)) as () => void;
    const controller = new AbortController();
    const waiting = admission.beginOrder('b.test', controller.signal);
    controller.abort();
    expect(await waiting).toMatchObject({ ok: false, reason: 'queue-full' });
    expect(admission.sizes.queued).toBe(0);
    first();
    expect(admission.sizes.running).toBe(0);
  });

  it('backs a failing name off, doubling up to the maximum, and forgets it on success', async () => {
    const { admission, clock } = setup(yes, { failureBackoffMs: 1000, failureBackoffMaxMs: 3000 });
    const start = clock.now();
    expect(admission.failed('f.test', new Error('x'))).toBe(start + 1000);
    expect(await admission.admit('f.test')).toMatchObject({
      ok: false,
      reason: 'backoff',
      retryAt: start + 1000,
    });
    await clock.advance(1000);
    expect((await admission.admit('f.test')).ok).toBe(true);
    expect(admission.failed('f.test', new Error('x'))).toBe(clock.now() + 2000);
    expect(admission.failed('f.test', new Error('x'))).toBe(clock.now() + 3000);
    admission.succeeded('f.test');
    expect((await admission.admit('f.test')).ok).toBe(true);
    expect(admission.failed('f.test', new Error('x'))).toBe(clock.now() + 1000);
  });

  it('refuses bad limits naming the option', () => {
    for (const [limits, option] of [
      [{ perDomain: 0 }, 'limits.perDomain'],
      [{ globalWindowMs: -1 }, 'limits.globalWindowMs'],
      [{ bogus: 1 }, 'limits.bogus'],
      [{ failureBackoffMs: 10, failureBackoffMaxMs: 5 }, 'limits.failureBackoffMaxMs'],
    ] as const) {
      try {
        resolveLimits(limits as OnDemandLimits);
        expect.unreachable();
      } catch (error) {
        expect(isCertkeeperError(error, 'INVALID_OPTION')).toBe(true);
        expect((error as { details: { option: string } }).details.option).toBe(option);
      }
    }
  });
});
