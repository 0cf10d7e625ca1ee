import { describe, expect, it } from 'vitest';
import {
  failureRetryDelay,
  DEFAULT_RENEWAL_POLICY as P,
  RETRY_FLOOR_MS,
  renewalTime,
  retryDelay,
  timeInWindow,
  validatePolicy,
  warningTimes,
} from '../../src/manager/policy.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const window = (lifetime: number) => ({ notBefore: new Date(0), notAfter: new Date(lifetime) });

describe('renewalTime', () => {
  it('renews at 2/3 of the lifetime, pulled earlier by at most 5 % of it', () => {
    for (const lifetime of [90 * DAY, 6 * DAY, DAY, 60_000]) {
      expect(renewalTime(window(lifetime), P, 0)).toBeCloseTo((lifetime * 2) / 3, 0);
      expect(renewalTime(window(lifetime), P, 0.5)).toBeCloseTo(lifetime * (2 / 3 - 0.025), 0);
      expect(renewalTime(window(lifetime), P, 0.999_999)).toBeGreaterThan(lifetime * (2 / 3 - 0.05));
    }
  });

  it('accepts a duration before expiry; one longer than the lifetime falls back to 2/3 (not a renewal loop)', () => {
    const policy = { ...P, renewAt: { beforeExpiryMs: 30 * DAY }, jitter: 0 };
    expect(renewalTime(window(90 * DAY), policy, 0.5)).toBe(60 * DAY);
    // 30 days before expiry of a 24-hour certificate would be before it was issued.
    expect(renewalTime(window(DAY), policy, 0.5)).toBe(Math.floor((DAY * 2) / 3));
  });

  it('jitter never pulls a renewal earlier than halfway to its planned time', () => {
    const policy = { ...P, renewAt: { beforeExpiryMs: 0.7 * DAY }, jitter: 0.5 };
    expect(renewalTime(window(DAY), policy, 0.999)).toBe(Math.floor(0.15 * DAY));
  });

  it('picks a point inside an ARI window with the generation sample', () => {
    const w = { start: new Date(1000), end: new Date(2000) };
    expect(timeInWindow(w, 0)).toBe(1000);
    expect(timeInWindow(w, 0.5)).toBe(1500);
  });

  it('bounds an ARI window: never past 9/10 of the lifetime, nothing from invalid dates', () => {
    const lifetime = window(DAY);
    const late = { start: new Date(2 * DAY), end: new Date(3 * DAY) };
    expect(timeInWindow(late, 0.5, lifetime, P)).toBe(0.9 * DAY);
    const early = { start: new Date(0.1 * DAY), end: new Date(0.2 * DAY) };
    expect(timeInWindow(early, 0, lifetime, P)).toBe(0.1 * DAY);
    expect(timeInWindow({ start: new Date(Number.NaN), end: new Date(1) }, 0, lifetime, P)).toBeUndefined();
    expect(timeInWindow({ start: new Date(2), end: new Date(1) }, 0, lifetime, P)).toBeUndefined();
  });
});

describe('retryDelay', () => {
  const mid = () => 0.5; // no ±10 % jitter

  it('grows from minutes to hours and stops at the maximum', () => {
    const delays = [1, 2, 3, 4, 5, 6, 9, 20].map((n) => retryDelay(n, 0, undefined, P, mid));
    expect(delays.slice(0, 4)).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(delays.at(-1)).toBe(6 * HOUR);
    for (let i = 1; i < delays.length; i++) expect(delays[i]!).toBeGreaterThanOrEqual(delays[i - 1]!);
  });

  it('never waits past a quarter of the remaining lifetime, nor below the floor', () => {
    expect(retryDelay(10, 0, 2 * HOUR, P, mid)).toBe(HOUR / 2);
    expect(retryDelay(10, 0, 2_000, P, mid)).toBe(RETRY_FLOOR_MS);
  });

  it('keeps retrying within minutes once expired', () => {
    expect(retryDelay(20, 10 * DAY, DAY, P, mid)).toBe(5 * 60_000);
  });

  it('bounds what the failure says: a Retry-After is a floor within a quarter of the remaining lifetime', () => {
    const failure = (retryAfterMs: unknown, retryable?: boolean) => ({ retryAfterMs, retryable });
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(10 * 60_000), mid)).toBe(10 * 60_000);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(315_360_000_000), mid)).toBe(HOUR / 2);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(1e300), mid)).toBe(HOUR / 2);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(Number.NaN), mid)).toBe(60_000);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(-5), mid)).toBe(60_000);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure('soon'), mid)).toBe(60_000);
    // Nothing served (or expired): at most the longest backoff.
    expect(failureRetryDelay(1, 0, undefined, P, failure(315_360_000_000), mid)).toBe(P.retryMaxMs);
    expect(failureRetryDelay(1, DAY, 0, P, failure(315_360_000_000), mid)).toBe(P.retryMaxMs);
    // Retrying cannot help: the longest backoff, still before expiry.
    expect(failureRetryDelay(1, 0, undefined, P, failure(undefined, false), mid)).toBe(P.retryMaxMs);
    expect(failureRetryDelay(1, 0, 2 * HOUR, P, failure(undefined, false), mid)).toBe(HOUR / 2);
  });

  it('spreads replicas by ±10 %', () => {
    expect(retryDelay(1, 0, undefined, P, () => 0)).toBe(54_000);
    expect(retryDelay(1, 0, undefined, P, () => 0.999_999)).toBe(66_000);
  });
});

describe('warningTimes', () => {
  it('are 30/14/7 days before expiry for 90 days, scaled for 6 days and 24 hours', () => {
    const secondsBefore = (lifetime: number) =>
      warningTimes(window(lifetime), P).map((w) => Math.round((lifetime - w.at) / 1000));
    expect(secondsBefore(90 * DAY)).toEqual([30, 14, 7].map((d) => d * 86_400));
    expect(secondsBefore(6 * DAY)).toEqual([172_800, 80_640, 40_320]); // 2 d, 22.4 h, 11.2 h
    expect(secondsBefore(DAY)).toEqual([28_800, 13_440, 6_720]); // 8 h, 3.7 h, 1.9 h
  });
});

describe('validatePolicy', () => {
  it.each([
    [{ renewAt: 1.2 }, /renewal\.renewAt/],
    [{ renewAt: { beforeExpiryMs: -1 } }, /renewal\.renewAt/],
    [{ jitter: 0.9 }, /renewal\.jitter/],
    [{ retryMinMs: 10 }, /renewal\.retryMinMs/],
    [{ retryMaxMs: 1000, retryMinMs: 5000 }, /renewal\.retryMaxMs/],
    [{ warnAt: [2] }, /renewal\.warnAt/],
    [{ renewAt: 0.1, jitter: 0.1 }, /renewal\.jitter must be smaller than renewal\.renewAt/],
    [{ renewat: 0.5 }, /renewal\.renewat is not an option/],
  ])('rejects %j naming the option', (input, message) => {
    expect(() => validatePolicy(input as never, 'options.renewal')).toThrowError(message);
  });
});
