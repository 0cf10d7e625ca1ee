/**
 * Health as facts: `health(manager)` says whether the process works (live) and whether every
 * certificate is served, verified and not about to expire (ready), certificate by certificate.
 * `createHealthHandler` (./health-handler.ts) serves the same facts as `/healthz` and `/readyz`.
 *
 * Readiness turns false before a certificate is absent: when it is expired, not yet valid, within
 * `expiryMarginMs` of its expiry (at most a tenth of its lifetime, so a short-lived certificate is
 * not always "expiring"), or when its live check failed and nothing verified replaced it.
 */
import { type Clock, systemClock } from '../clock.js';
import { optionError } from '../errors.js';
import { DEFAULT_EXPIRY_MARGIN_MS, type HealthReport, healthReport } from '../manager/health.js';
import { type ObservedManager, observe } from './observer.js';

export {
  type CertificateHealth,
  DEFAULT_EXPIRY_MARGIN_MS,
  type HealthReport,
  type NotReadyReason,
  notReadyReason,
} from '../manager/health.js';

/** Options of `health` and the health handler. */
export interface HealthOptions {
  /** The manager's clock (a FakeClock in tests). Default: the system clock. */
  clock?: Pick<Clock, 'now'>;
  /** Not ready when a certificate expires within this (at most a tenth of its lifetime). Default 1 hour. */
  expiryMarginMs?: number;
  /** The certificates readiness depends on (default: all). */
  certificates?: readonly string[];
}

export interface ResolvedHealthOptions {
  now: () => number;
  expiryMarginMs: number;
  certificates: readonly string[] | undefined;
}

const invalid = (option: string, message: string) => optionError(option, message, 'health');

export function resolveHealthOptions(options: HealthOptions = {}): ResolvedHealthOptions {
  if (typeof options !== 'object' || options === null) throw invalid('health', 'must be an object');
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function') throw invalid('clock', 'must have now()');
  const expiryMarginMs = options.expiryMarginMs ?? DEFAULT_EXPIRY_MARGIN_MS;
  if (typeof expiryMarginMs !== 'number' || !(expiryMarginMs >= 0) || !Number.isFinite(expiryMarginMs))
    throw invalid('expiryMarginMs', 'must be a number of milliseconds >= 0');
  const ids = options.certificates;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')))
    throw invalid('certificates', 'must be an array of certificate ids');
  return { now: () => clock.now(), expiryMarginMs, certificates: ids };
}

/** The health of every managed certificate (and of those `certificates` names but nobody manages). */
export function assess(manager: ObservedManager, o: ResolvedHealthOptions): HealthReport {
  const observer = observe(manager);
  return healthReport(manager.status(), o.now(), o, (s) => observer.unverified(s));
}

/**
 * Whether the process works and every certificate is served, verified and not about to expire;
 * see `HealthReport`. Create it (or `createHealthHandler`) before `manager.start()` so that live
 * checks failing from the first renewal on are seen.
 */
export function health(manager: ObservedManager, options: HealthOptions = {}): HealthReport {
  return assess(manager, resolveHealthOptions(options));
}
