/**
 * The limits of on-demand issuance and their defaults. The budgets stay inside Let's Encrypt's
 * published limits (50 new certificates per registered domain per 7 days, 300 new orders per
 * account per 3 hours), so an on-demand server pointed at Let's Encrypt cannot be made to exhaust
 * them by anyone who can point DNS names at it.
 */
import { optionError } from '../errors.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface OnDemandLimits {
  /** Orders per registered domain (Public Suffix List) within `perDomainWindowMs`. Default 50. */
  perDomain?: number;
  /** Default 7 days. */
  perDomainWindowMs?: number;
  /** Orders in total within `globalWindowMs`. Default 300. */
  global?: number;
  /** Default 3 hours. */
  globalWindowMs?: number;
  /** Orders running at once; more wait for a slot (within the handshake's wait). Default 10. */
  concurrentOrders?: number;
  /** Orders allowed to wait for a slot; beyond that a name is refused at once. Default 1000. */
  queuedOrders?: number;
  /** How long `decide` may take; a timeout counts as "no". Default 1000 ms. */
  decideTimeoutMs?: number;
  /** How long a "no" is remembered (no `decide` call for that name meanwhile). Default 10 min. */
  deniedTtlMs?: number;
  /** Names remembered as denied; the least recently denied are forgotten first. Default 10 000. */
  deniedMax?: number;
  /** First wait after a failed order before that name may order again. Default 1 min. */
  failureBackoffMs?: number;
  /** The wait doubles with each failure in a row, up to this. Default 1 day. */
  failureBackoffMaxMs?: number;
  /** Names remembered as failing. Default 10 000. */
  failedMax?: number;
}

export type ResolvedLimits = Required<OnDemandLimits>;

export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  perDomain: 50,
  perDomainWindowMs: 7 * DAY,
  global: 300,
  globalWindowMs: 3 * HOUR,
  concurrentOrders: 10,
  queuedOrders: 1000,
  decideTimeoutMs: 1000,
  deniedTtlMs: 10 * 60_000,
  deniedMax: 10_000,
  failureBackoffMs: 60_000,
  failureBackoffMaxMs: DAY,
  failedMax: 10_000,
});

/** Counts must be positive integers; durations positive finite numbers of ms. */
const COUNTS = ['perDomain', 'global', 'concurrentOrders', 'deniedMax', 'failedMax'] as const;
const DURATIONS = [
  'perDomainWindowMs',
  'globalWindowMs',
  'decideTimeoutMs',
  'deniedTtlMs',
  'failureBackoffMs',
  'failureBackoffMaxMs',
] as const;

/** Validates `limits` once, naming the option (`onDemand.limits.<name>`) that is wrong. */
export function resolveLimits(limits: OnDemandLimits | undefined, owner = 'onDemand'): ResolvedLimits {
  if (limits === undefined) return DEFAULT_LIMITS;
  if (limits === null || typeof limits !== 'object') throw optionError('limits', 'must be an object', owner);
  const known = new Set<string>(Object.keys(DEFAULT_LIMITS));
  for (const key of Object.keys(limits)) {
    if (!known.has(key)) throw optionError(`limits.${key}`, 'is not a known limit', owner);
  }
  const out = { ...DEFAULT_LIMITS, ...stripUndefined(limits) };
  for (const name of COUNTS) {
    if (!Number.isSafeInteger(out[name]) || out[name] < 1)
      throw optionError(`limits.${name}`, 'must be an integer >= 1', owner);
  }
  if (!Number.isSafeInteger(out.queuedOrders) || out.queuedOrders < 0)
    throw optionError('limits.queuedOrders', 'must be an integer >= 0', owner);
  for (const name of DURATIONS) {
    if (typeof out[name] !== 'number' || !Number.isFinite(out[name]) || out[name] <= 0)
      throw optionError(`limits.${name}`, 'must be a finite number of ms > 0', owner);
  }
  if (out.failureBackoffMaxMs < out.failureBackoffMs)
    throw optionError('limits.failureBackoffMaxMs', 'must be >= limits.failureBackoffMs', owner);
  return Object.freeze(out);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
