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
 *
 * A renewal due at issuance would renew in a loop, each new certificate due at once: a
 * `beforeExpiryMs` longer than a certificate's whole lifetime (a rule written for 90-day
 * certificates meeting 24-hour ones) falls back to the default fraction, and jitter never pulls a
 * renewal earlier than halfway to its planned time.
 */
export function renewalTime(validity: Validity, policy: RenewalPolicy, jitterSample: number): number {
  const start = validity.notBefore.getTime();
  const end = validity.notAfter.getTime();
  const lifetime = Math.max(0, end - start);
  const fraction =
    typeof policy.renewAt === 'number'
      ? policy.renewAt
      : policy.renewAt.beforeExpiryMs < lifetime
        ? 1 - policy.renewAt.beforeExpiryMs / lifetime
        : (DEFAULT_RENEWAL_POLICY.renewAt as number);
  const planned = start + lifetime * fraction;
  const jittered = planned - jitterSample * policy.jitter * lifetime;
  return Math.floor(Math.max(jittered, start + (planned - start) / 2));
}

/**
 * The latest point of a certificate's lifetime a CA may move its renewal to (ARI): a tenth of the
 * lifetime stays for retries (or the lifetime rule's own time, when that is later).
 */
export const LATEST_WINDOW_FRACTION = 0.9;

/**
 * The renewal time inside a CA-suggested window (ARI), drawn uniformly with the generation's
 * sample, or undefined for a window that is not one (invalid dates, ending before it starts).
 * The CA may move renewal earlier (a revocation) but never past `LATEST_WINDOW_FRACTION` of the
 * lifetime, so a window after notAfter cannot leave an expired certificate served.
 */
export function timeInWindow(
  window: { start: Date; end: Date },
  sample: number,
  validity?: Validity,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): number | undefined {
  const start = window.start.getTime();
  const end = window.end.getTime();
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return undefined;
  const at = Math.floor(start + sample * (end - start));
  if (!validity) return at;
  const notBefore = validity.notBefore.getTime();
  const lifetime = Math.max(0, validity.notAfter.getTime() - notBefore);
  const latest = Math.max(
    notBefore + LATEST_WINDOW_FRACTION * lifetime,
    renewalTime(validity, policy, sample),
  );
  return Math.min(at, Math.floor(latest));
}

/** ARI refreshes (when to ask the CA for its window again) are kept within [1 minute, 1 day]. */
export const WINDOW_REFRESH_MIN_MS = 60_000;
export const WINDOW_REFRESH_MAX_MS = 24 * 3_600_000;

/** When to ask for the window again: the CA's time, bounded; undefined when it gave none usable. */
export function windowRefreshTime(refreshAt: Date | undefined, now: number): number | undefined {
  const at = refreshAt?.getTime();
  if (at === undefined || !Number.isFinite(at)) return undefined;
  return Math.min(Math.max(at, now + WINDOW_REFRESH_MIN_MS), now + WINDOW_REFRESH_MAX_MS);
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

/**
 * Delay before retrying after a failure, with what the failure says: a CA's Retry-After (rate
 * limits, maintenance) is a floor, and an error retrying cannot fix waits the longest backoff.
 * Whatever the CA or issuer said, the wait is bounded like the backoff is: never past a quarter
 * of the remaining lifetime, never more than `retryMaxMs` when nothing (or only an expired
 * certificate) is served, and always a finite number of milliseconds.
 */
export function failureRetryDelay(
  failures: number,
  now: number,
  notAfter: number | undefined,
  policy: RenewalPolicy,
  failure: { retryAfterMs?: unknown; retryable?: unknown },
  random: () => number = Math.random,
): number {
  const asked =
    typeof failure.retryAfterMs === 'number' && failure.retryAfterMs > 0 ? failure.retryAfterMs : 0;
  let delay =
    failure.retryable === false ? policy.retryMaxMs : retryDelay(failures, now, notAfter, policy, random);
  delay = Math.max(delay, asked);
  const remaining = notAfter === undefined ? 0 : notAfter - now;
  delay = Math.min(delay, remaining > 0 ? remaining / 4 : policy.retryMaxMs);
  return Math.max(RETRY_FLOOR_MS, Math.floor(Number.isFinite(delay) ? delay : policy.retryMaxMs));
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
  const fail = (name: string, bound: string) => {
    throw new CertkeeperError('INVALID_OPTION', `${path}.${name} ${bound}`, {
      details: { option: `${path}.${name}`.replace(/^options\./, '') },
    });
  };
  if (input !== undefined && (typeof input !== 'object' || input === null)) {
    throw new CertkeeperError('INVALID_OPTION', `${path} must be an object`, {
      details: { option: path.replace(/^options\./, '') },
    });
  }
  // A misspelt key would silently leave the default in force.
  for (const name of Object.keys(input ?? {})) {
    if (!(name in DEFAULT_RENEWAL_POLICY))
      fail(name, `is not an option (${Object.keys(DEFAULT_RENEWAL_POLICY).join(', ')})`);
  }
  const policy = { ...DEFAULT_RENEWAL_POLICY, ...(input ?? {}) };
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
  if (typeof policy.renewAt === 'number' && policy.jitter >= policy.renewAt) {
    // Jitter is a share of the lifetime taken off the renewal time: as large as renewAt itself,
    // it would renew at issuance.
    fail('jitter', `must be smaller than renewal.renewAt (${policy.renewAt})`);
  }
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
