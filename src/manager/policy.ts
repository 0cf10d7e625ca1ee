/**
 * When to renew, when to retry, when to warn. Pure functions of a certificate's validity window,
 * so the rules can be read and tested in isolation. Everything is relative to the certificate's
 * own lifetime: a fixed "30 days before expiry" is wrong for 6-day and 24-hour certificates.
 */
import { CertkeeperError } from '../errors.js';

export interface RenewalPolicy {
  /** Fraction of the lifetime at which to renew (default 2/3), or a fixed time before expiry. */
  renewAt: number | { beforeExpiryMs: number };
  /** Renewal is pulled earlier by a random share of the lifetime up to this fraction (default 0.05). */
  jitter: number;
  /** First retry delay after a failure (default 1 minute); doubles per failure. */
  retryMinMs: number;
  /** Longest retry delay (default 6 hours). */
  retryMaxMs: number;
  /**
   * Warnings when this fraction of the lifetime remains. Default: 30/90, 14/90, 7/90, i.e.
   * 30, 14 and 7 days for a 90-day certificate, 8 h, 3.7 h and 1.9 h for a 24-hour one.
   */
  warnAt: number[];
}

export const DEFAULT_RENEWAL_POLICY: RenewalPolicy = {
  renewAt: 2 / 3,
  jitter: 0.05,
  retryMinMs: 60_000,
  retryMaxMs: 6 * 3_600_000,
  warnAt: [30 / 90, 14 / 90, 7 / 90],
};

/** Never retry sooner than this, whatever the lifetime: a hot loop helps nobody. */
export const RETRY_FLOOR_MS = 1_000;

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * The planned renewal time. `jitterSample` in [0, 1) is drawn once per certificate generation,
 * so rescheduling does not re-roll it and a fleet spreads out instead of stampeding.
 */
export function renewalTime(validity: Validity, policy: RenewalPolicy, jitterSample: number): number {
  const start = validity.notBefore.getTime();
  const end = validity.notAfter.getTime();
  const lifetime = Math.max(0, end - start);
  const planned =
    typeof policy.renewAt === 'number'
      ? start + lifetime * policy.renewAt
      : end - policy.renewAt.beforeExpiryMs;
  const clamped = Math.min(Math.max(planned, start), end);
  return Math.floor(clamped - jitterSample * policy.jitter * lifetime);
}

/** A time inside a CA-suggested window (ARI), drawn uniformly with the generation's sample. */
export function timeInWindow(window: { start: Date; end: Date }, sample: number): number {
  const start = window.start.getTime();
  return Math.floor(start + sample * Math.max(0, window.end.getTime() - start));
}

/**
 * Delay before retry number `failures` (1 = first retry): exponential from `retryMinMs` up to
 * `retryMaxMs` ("minutes, then hours"), but never more than a quarter of the remaining lifetime,
 * so a failing renewal gets several more tries before expiry. Once expired, retries stay within
 * minutes: the certificate is useless until replaced. ±10 % jitter de-synchronises replicas.
 */
export function retryDelay(
  failures: number,
  now: number,
  notAfter: number | undefined,
  policy: RenewalPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  let delay = Math.min(policy.retryMinMs * 2 ** exponent, policy.retryMaxMs);
  if (notAfter !== undefined) {
    const remaining = notAfter - now;
    delay = remaining > 0 ? Math.min(delay, remaining / 4) : Math.min(delay, 5 * 60_000);
  }
  delay *= 0.9 + 0.2 * random();
  return Math.max(RETRY_FLOOR_MS, Math.round(delay));
}

export interface Warning {
  /** Fraction of the lifetime remaining at this threshold. */
  threshold: number;
  at: number;
}

/** Warning instants of a certificate, earliest first. */
export function warningTimes(validity: Validity, policy: RenewalPolicy): Warning[] {
  const start = validity.notBefore.getTime();
  const end = validity.notAfter.getTime();
  const lifetime = end - start;
  return [...policy.warnAt]
    .sort((a, b) => b - a)
    .map((threshold) => ({ threshold, at: end - threshold * lifetime }));
}

export function validatePolicy(input: Partial<RenewalPolicy> | undefined, path: string): RenewalPolicy {
  const policy = { ...DEFAULT_RENEWAL_POLICY, ...(input ?? {}) };
  const fail = (name: string, bound: string) => {
    throw new CertkeeperError('INVALID_OPTION', `${path}.${name} ${bound}`, {
      details: { option: `${path}.${name}` },
    });
  };
  if (typeof policy.renewAt === 'number') {
    if (!(policy.renewAt > 0 && policy.renewAt < 1))
      fail('renewAt', 'must be a fraction between 0 and 1 exclusive');
  } else if (
    typeof policy.renewAt !== 'object' ||
    !(Number.isFinite(policy.renewAt.beforeExpiryMs) && policy.renewAt.beforeExpiryMs > 0)
  ) {
    fail('renewAt', 'must be a fraction or { beforeExpiryMs: positive number }');
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 0.5)) fail('jitter', 'must be between 0 and 0.5');
  if (!(Number.isFinite(policy.retryMinMs) && policy.retryMinMs >= RETRY_FLOOR_MS)) {
    fail('retryMinMs', `must be at least ${RETRY_FLOOR_MS}`);
  }
  if (!(Number.isFinite(policy.retryMaxMs) && policy.retryMaxMs >= policy.retryMinMs)) {
    fail('retryMaxMs', 'must be at least retryMinMs');
  }
  if (!Array.isArray(policy.warnAt) || policy.warnAt.some((t) => !(t > 0 && t < 1))) {
    fail('warnAt', 'must be an array of fractions between 0 and 1');
  }
  return policy;
}
