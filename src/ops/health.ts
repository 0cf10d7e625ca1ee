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
import { type ObservedManager, observe } from './observer.js';

/** Options of `health` and the health handler. */
export interface HealthOptions {
  /** The manager's clock (a FakeClock in tests). Default: the system clock. */
  clock?: Pick<Clock, 'now'>;
  /** Not ready when a certificate expires within this (at most a tenth of its lifetime). Default 1 hour. */
  expiryMarginMs?: number;
  /** The certificates readiness depends on (default: all). */
  certificates?: readonly string[];
}

/** Why a certificate is not ready. */
export type NotReadyReason = 'missing' | 'expired' | 'not-yet-valid' | 'expiring' | 'unverified';

/** The health of one managed certificate. */
export interface CertificateHealth {
  id: string;
  ready: boolean;
  /** Why it is not ready; null when it is. */
  reason: NotReadyReason | null;
  serial: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  /** Milliseconds until notAfter (negative once expired); null when nothing is served. */
  remainingMs: number | null;
  nextRenewalAt: Date | null;
  renewing: boolean;
  failures: number;
  lastError: { code: string; message: string } | null;
}

/** Liveness and readiness of a manager, with the health of each certificate. */
export interface HealthReport {
  /** The process answers (this report was made). */
  live: true;
  /** Every certificate readiness depends on is ready. */
  ready: boolean;
  checkedAt: Date;
  certificates: CertificateHealth[];
}

export const DEFAULT_EXPIRY_MARGIN_MS = 3_600_000;

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
  const now = o.now();
  const statuses = manager.status();
  const byId = new Map(statuses.map((s) => [s.id, s]));
  const ids = o.certificates ?? statuses.map((s) => s.id);
  const certificates = ids.map((id): CertificateHealth => {
    const s = byId.get(id);
    if (!s)
      return {
        id,
        ready: false,
        reason: 'missing',
        serial: null,
        notBefore: null,
        notAfter: null,
        remainingMs: null,
        nextRenewalAt: null,
        renewing: false,
        failures: 0,
        lastError: null,
      };
    const reason = notReadyReason(s, now, o.expiryMarginMs, observer.unverified(s));
    return {
      id,
      ready: reason === null,
      reason,
      serial: s.serial,
      notBefore: s.notBefore,
      notAfter: s.notAfter,
      remainingMs: s.notAfter ? s.notAfter.getTime() - now : null,
      nextRenewalAt: s.nextRenewalAt,
      renewing: s.renewing,
      failures: s.failures,
      lastError: s.lastError,
    };
  });
  return { live: true, ready: certificates.every((c) => c.ready), checkedAt: new Date(now), certificates };
}

/** Why a certificate (its status) is not ready at `now`, or null when it is. */
export function notReadyReason(
  s: { serial: string | null; notBefore: Date | null; notAfter: Date | null },
  now: number,
  marginMs: number,
  unverified: boolean,
): NotReadyReason | null {
  if (!s.serial || !s.notAfter || !s.notBefore) return 'missing';
  const notAfter = s.notAfter.getTime();
  const notBefore = s.notBefore.getTime();
  if (notAfter <= now) return 'expired';
  if (notBefore > now) return 'not-yet-valid';
  if (notAfter - now <= Math.min(marginMs, (notAfter - notBefore) / 10)) return 'expiring';
  if (unverified) return 'unverified';
  return null;
}

/**
 * Whether the process works and every certificate is served, verified and not about to expire;
 * see `HealthReport`. Create it (or `createHealthHandler`) before `manager.start()` so that live
 * checks failing from the first renewal on are seen.
 */
export function health(manager: ObservedManager, options: HealthOptions = {}): HealthReport {
  return assess(manager, resolveHealthOptions(options));
}
