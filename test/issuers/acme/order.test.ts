// Polling an ACME object (src/issuers/acme/order.ts). A result is seen within `intervalMs` of the
// CA finishing for as long as a CA usually takes, without more requests per order in a minute
// than the former schedule (25 ms doubling to 2 s) made; a Retry-After is always honoured, and a
// CA answering `Retry-After: 0` to every poll is not polled in a loop.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLL, pollStatus } from '../../../src/issuers/acme/order.js';

/**
 * A CA whose object turns valid at `readyAt` ms of simulated time. Waiting advances the simulated
 * clock by exactly the delay asked for, so the schedule itself is measured, not the machine.
 */
function simulatedCa(readyAt: number, retryAfter?: string) {
  let now = 0;
  const polls: number[] = [];
  const waits: number[] = [];
  const client = {
    api: {
      async apiRequest() {
        polls.push(now);
        if (polls.length > 10_000) throw new Error('runaway polling');
        const status = now >= readyAt ? 'valid' : 'pending';
        return { data: { status }, headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } };
      },
    },
  };
  const wait = async (ms: number) => {
    waits.push(ms);
    now += ms;
  };
  return { client: client as never, wait, polls, waits, now: () => now };
}

const signal = new AbortController().signal;
/** Polls the former schedule (25 ms doubling to a 2 s cap) made within a minute. */
function formerPollsInAMinute(): number {
  let t = 0;
  let delay = 25;
  let n = 0;
  for (t += delay; t <= 60_000; t += delay = Math.min(delay * 2, 2_000)) n++;
  return n;
}

describe('pollStatus', () => {
  it('sees the result within intervalMs of the CA finishing, for every finishing time in the first 5 s', async () => {
    const lags: number[] = [];
    for (let readyAt = 0; readyAt <= 5_000; readyAt += 37) {
      const ca = simulatedCa(readyAt);
      const done = await pollStatus(ca.client, 'https://ca.test/authz/1', signal, DEFAULT_POLL, {}, ca.wait);
      expect(done.status).toBe('valid');
      lags.push(ca.now() - readyAt);
    }
    expect(Math.max(...lags)).toBeLessThanOrEqual(250);
  });

  it('makes no more requests in a minute than the former 25 ms → 2 s doubling schedule did', async () => {
    expect(formerPollsInAMinute()).toBe(35);
    const ca = simulatedCa(Number.POSITIVE_INFINITY);
    const polling = pollStatus(ca.client, 'https://ca.test/authz/1', signal, DEFAULT_POLL, {}, async (ms) => {
      if (ca.now() + ms > 60_000) throw new Error('a minute has passed');
      await ca.wait(ms);
    });
    await expect(polling).rejects.toThrow('a minute has passed');
    expect(ca.polls.length).toBeLessThanOrEqual(formerPollsInAMinute());
    // …and later on, far fewer: the delay keeps growing up to maxMs.
    expect(ca.waits.at(-1)).toBeGreaterThan(2_000);
  });

  it('a Retry-After longer than our own delay is always waited for', async () => {
    const ca = simulatedCa(10_000, '3');
    await pollStatus(
      ca.client,
      'https://ca.test/order/1',
      signal,
      DEFAULT_POLL,
      { retryAfterMs: 3_000 },
      ca.wait,
    );
    expect(ca.waits.length).toBeGreaterThan(0);
    for (const wait of ca.waits) expect(wait).toBeGreaterThanOrEqual(3_000);
  });

  it('Retry-After: 0 does not make polling spin: each wait is at least the schedule’s own delay', async () => {
    const ca = simulatedCa(4_000, '0');
    await pollStatus(
      ca.client,
      'https://ca.test/authz/1',
      signal,
      DEFAULT_POLL,
      { retryAfterMs: 0 },
      ca.wait,
    );
    expect(ca.waits[0]).toBeGreaterThanOrEqual(DEFAULT_POLL.initialMs);
    expect(Math.min(...ca.waits)).toBeGreaterThanOrEqual(DEFAULT_POLL.initialMs);
    // Polls stay on the schedule: not one per millisecond of the 4 s.
    expect(ca.polls.length).toBeLessThan(30);
  });

  it('`now`: the first poll goes out at once, the next ones follow the schedule', async () => {
    const ca = simulatedCa(100);
    await pollStatus(ca.client, 'https://ca.test/order/1', signal, DEFAULT_POLL, { now: true }, ca.wait);
    expect(ca.waits[0]).toBe(0);
    expect(ca.waits.slice(1).every((w) => w >= DEFAULT_POLL.initialMs)).toBe(true);
  });

  it('without a test hook it really waits: the first poll comes after initialMs', async () => {
    const at: number[] = [];
    const started = performance.now();
    const client = {
      api: {
        async apiRequest() {
          at.push(performance.now());
          return { data: { status: at.length > 1 ? 'valid' : 'pending' }, headers: { 'retry-after': '0' } };
        },
      },
    };
    await pollStatus(client as never, 'https://ca.test/authz/1', signal, DEFAULT_POLL, { retryAfterMs: 0 });
    // Timers never fire early (allow 1 ms of rounding).
    expect(at[0]! - started).toBeGreaterThanOrEqual(DEFAULT_POLL.initialMs - 1);
  });
});
