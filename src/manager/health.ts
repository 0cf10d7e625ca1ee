/**
 * A certificate's health as facts: ready when it is served, valid now, not within
 * `expiryMarginMs` of its expiry (at most a tenth of its lifetime, so a short-lived certificate is
 * not always "expiring"), and not a certificate whose live check failed. `manager.health()` and
 * the operations tools (src/ops) share these rules.
 */
import { optionError } from '../errors.js';
import type { CertificateStatus } from './status.js';

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

/** How close to its expiry a certificate stops being ready, by default (1 hour). */
export const DEFAULT_EXPIRY_MARGIN_MS = 3_600_000;

export interface ManagerHealthOptions {
  /** Not ready when a certificate expires within this (at most a tenth of its lifetime). Default 1 hour. */
  expiryMarginMs?: number;
  /** The certificates readiness depends on (default: all). */
  certificates?: readonly string[];
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

/** The report of `statuses` at `now`; `unverified` says which served certificate failed its live check. */
export function healthReport(
  statuses: readonly CertificateStatus[],
  now: number,
  options: { expiryMarginMs: number; certificates: readonly string[] | undefined },
  unverified: (status: CertificateStatus) => boolean,
): HealthReport {
  const byId = new Map(statuses.map((s) => [s.id, s]));
  const ids = options.certificates ?? statuses.map((s) => s.id);
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
    const reason = notReadyReason(s, now, options.expiryMarginMs, unverified(s));
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

/** `manager.health()`: validates its options; `unverifiedOf(id)` is the fingerprint whose deploy failed. */
export function managerHealth(
  statuses: readonly CertificateStatus[],
  now: number,
  options: ManagerHealthOptions,
  unverifiedOf: (id: string) => string | undefined,
): HealthReport {
  const { expiryMarginMs = DEFAULT_EXPIRY_MARGIN_MS, certificates } = options;
  if (typeof expiryMarginMs !== 'number' || !(expiryMarginMs >= 0) || !Number.isFinite(expiryMarginMs))
    throw optionError('expiryMarginMs', 'must be a number of milliseconds >= 0', 'health');
  if (
    certificates !== undefined &&
    (!Array.isArray(certificates) || certificates.some((id) => typeof id !== 'string'))
  )
    throw optionError('certificates', 'must be an array of certificate ids', 'health');
  return healthReport(statuses, now, { expiryMarginMs, certificates }, (s) => {
    const fingerprint = unverifiedOf(s.id);
    return fingerprint !== undefined && fingerprint === s.fingerprint256;
  });
}
