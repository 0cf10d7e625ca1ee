// Polling an ACME object (src/issuers/acme/order.ts): a Retry-After is honoured, but never below
// our own growing delay, so a CA answering `Retry-After: 0` to every poll is not polled in a loop.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLL, pollStatus } from '../../../src/issuers/acme/order.js';

/** An ACME client whose object stays `pending` for `pendingPolls` polls, always with Retry-After: 0. */
function impatientCa(pendingPolls: number) {
  const at: number[] = [];
  const client = {
    api: {
      async apiRequest() {
        at.push(performance.now());
        const status = at.length > pendingPolls ? 'valid' : 'pending';
        return { data: { status }, headers: { 'retry-after': '0' } };
      },
    },
  };
  return { client, at };
}

describe('pollStatus', () => {
  it('Retry-After: 0 does not make polling spin: each wait is at least the doubling delay', async () => {
    const { client, at } = impatientCa(4);
    const done = await pollStatus(
      client as never,
      'https://ca.test/authz/1',
      new AbortController().signal,
      DEFAULT_POLL,
      { retryAfterMs: 0 },
    );
    expect(done.status).toBe('valid');
    expect(at).toHaveLength(5);
    // Waits of 25, 50, 100, 200 ms (timers never fire early; allow 1 ms of rounding).
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    for (const [i, gap] of gaps.entries()) {
      expect(gap).toBeGreaterThanOrEqual(DEFAULT_POLL.initialMs * 2 ** (i + 1) - 1);
    }
  });
});
