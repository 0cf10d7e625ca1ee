/**
 * The facts a managed certificate reports (managed-certificate.ts keeps them): the stored pointer
 * it knows, what it serves, and the status snapshot derived from them.
 */
import { CertkeeperError, describeCause, type ErrorCode, isCertkeeperError } from '../errors.js';
import type { NameValidation } from '../issuers/issuer.js';
import type { CertificateConfig } from './options.js';
import type { Generation, GenerationMeta } from './records.js';

export interface StoredPointer {
  issuer: string;
  meta: GenerationMeta;
  /** Found in an earlier version's first-name directory (`layout.legacyCertificate`). */
  legacy?: boolean;
  /**
   * The pointer was damaged: `meta` was rebuilt from the newest valid generation stored. `repair`
   * is false when a newer generation was skipped for a reason that is not damage (sealed with an
   * encryption key this replica lacks, made for another configuration): it is not written over.
   */
  rebuilt?: { repair: boolean };
}

export interface CertificateStatus {
  id: string;
  names: string[];
  purpose: 'server' | 'client';
  state: 'missing' | 'valid' | 'expired';
  /** An attempt to obtain or renew is under way. */
  renewing: boolean;
  issuer: string | null;
  serial: string | null;
  fingerprint256: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  nextRenewalAt: Date | null;
  failures: number;
  /** The last attempt's typed error (its stable code), null after a success. */
  lastError: { code: ErrorCode; message: string } | null;
  /** The last certificate this replica obtained for it; null while it only loaded or adopted one. */
  lastIssuance: Issuance | null;
}

/** How a certificate was obtained: by which replica (it held the issuance lock), from which issuer, how each name was validated. */
export interface Issuance {
  at: Date;
  serial: string;
  issuer: string;
  replica: string;
  /** Per name: the challenge type that answered, or a reused authorization (ACME); empty when the issuer does not say. */
  validation: NameValidation[];
}

export function asError(error: unknown): CertkeeperError {
  if (isCertkeeperError(error)) return error;
  return new CertkeeperError('ISSUER_FAILED', describeCause(error), { cause: error });
}

/** renewAll's rejection: which certificates were not renewed, and why (codes only). */
export function renewAllFailure(
  failed: ReadonlyMap<string, CertkeeperError>,
  total: number,
): CertkeeperError {
  const list = [...failed].map(([id, e]) => `${id} (${e.code})`).join(', ');
  return new CertkeeperError(
    'RENEWAL_FAILED',
    `${failed.size} of ${total} certificates were not renewed: ${list}`,
    {
      cause: failed.values().next().value,
      details: { failed: Object.fromEntries([...failed].map(([id, e]) => [id, e.code])) },
    },
  );
}

/** What is served: in memory, or known by its stored pointer. */
interface Served {
  readonly current?: Generation;
  readonly stored?: StoredPointer;
}

/** The facts of what is served (or would be, once materialized), from memory or the pointer. */
export function servedFacts(
  state: Served,
): { serial: string; fingerprint256: string; notBefore: Date; notAfter: Date; issuer: string } | undefined {
  if (state.current) {
    const { serialNumber, fingerprint256, notBefore, notAfter } = state.current.info;
    return { serial: serialNumber, fingerprint256, notBefore, notAfter, issuer: state.current.issuer };
  }
  if (state.stored) {
    const { meta, issuer } = state.stored;
    return {
      serial: meta.serial,
      fingerprint256: meta.fingerprint256,
      notBefore: new Date(meta.notBefore),
      notAfter: new Date(meta.notAfter),
      issuer,
    };
  }
  return undefined;
}

export function statusOf(
  state: Served & {
    config: CertificateConfig;
    renewing: boolean;
    plan: { failures: number; lastError?: CertkeeperError; lastIssuance: Issuance | null };
  },
  now: number,
  due: number | undefined,
): CertificateStatus {
  const facts = servedFacts(state);
  return {
    id: state.config.id,
    names: [...state.config.names],
    purpose: state.config.purpose,
    state: !facts ? 'missing' : facts.notAfter.getTime() <= now ? 'expired' : 'valid',
    renewing: state.renewing,
    issuer: facts?.issuer ?? null,
    serial: facts?.serial ?? null,
    fingerprint256: facts?.fingerprint256 ?? null,
    notBefore: facts?.notBefore ?? null,
    notAfter: facts?.notAfter ?? null,
    nextRenewalAt: due === undefined || !Number.isFinite(due) ? null : new Date(due),
    failures: state.plan.failures,
    lastError: state.plan.lastError
      ? { code: state.plan.lastError.code, message: state.plan.lastError.message }
      : null,
    lastIssuance: state.plan.lastIssuance,
  };
}
