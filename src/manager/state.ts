/**
 * What the manager knows about one managed certificate, and the status snapshot derived from it.
 * A certificate is either *materialized* (`current`: chain and key in memory, validated) or only
 * *known* (`stored`: the pointer read from the store). With thousands of certificates only the
 * pointers are read at start-up; a certificate is materialized on its first handshake, or when
 * it is renewed. That keeps start-up and memory proportional to what is actually served.
 */
import { CertkeeperError, describeCause, type ErrorCode, isCertkeeperError } from '../errors.js';
import type { ManagedCertificate } from './options.js';
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

export interface CertState {
  cert: ManagedCertificate;
  current?: Generation;
  currentMeta?: Omit<GenerationMeta, 'previous'>;
  /** The stored pointer of a certificate known but not yet materialized. */
  stored?: StoredPointer;
  /** A materialization under way (deduplicated). */
  loading?: Promise<Generation | undefined>;
  /** Drawn once per generation: jitter and position in an ARI window. */
  sample: number;
  /** The fingerprint `sample` was drawn for. */
  sampleFor?: string;
  renewAt?: number;
  retryAt?: number;
  /**
   * The fingerprint served when the failure that set `retryAt` happened (null: nothing was).
   * Once another certificate is served (adopted from the store), that retry is void.
   */
  retryFor?: string | null;
  /** When to ask the issuer for its renewal window again (ARI Retry-After). */
  windowRefreshAt?: number;
  failures: number;
  lastError?: CertkeeperError;
  /**
   * The last attempt failed with an error retrying cannot fix, and nothing has changed since
   * (no new attempt, no server started listening): `ready()` gives up on it at once.
   */
  blocked?: CertkeeperError;
  warned: Set<number>;
  inflight?: Promise<CertkeeperError | undefined>;
  queuedForced?: Promise<CertkeeperError | undefined>;
  /**
   * Issuer calls of attempts, until they settle. An attempt given up (time limit, stop) stops
   * waiting for its issuer, but the issuer may still be cleaning up (challenge records,
   * authorizations) through the store: `stop()` waits for these, bounded, before it resolves.
   */
  lingering: Set<Promise<unknown>>;
  /**
   * Resolved once something is served for this certificate: loaded from the store, adopted, or
   * obtained, live-verified and announced (not at the swap itself: see `ready()`).
   */
  ready: { promise: Promise<void>; resolve: () => void; readonly done: boolean };
  removed?: boolean;
  /** Serials revoked (here, or as the stored pointer says): never served again, never a fallback. */
  revoked?: Set<string>;
  /** Fingerprint of a certificate whose deploy failed (still served where it was kept): not ready. */
  unverified?: string;
  /** `factsKey` of another configuration found stored under this id at start-up, which this one replaces. */
  replaces?: string;
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
}

export function newState(cert: ManagedCertificate): CertState {
  let resolve!: () => void;
  let done = false;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  const ready = {
    promise,
    resolve: () => {
      done = true;
      resolve();
    },
    get done() {
      return done;
    },
  };
  return { cert, sample: Math.random(), failures: 0, warned: new Set(), lingering: new Set(), ready };
}

/**
 * Forgets a pending retry that was for another certificate than the one served now (adopted
 * from the store after a failure), with the failures it counted: it would order a certificate
 * the store already gave us. Not while an attempt runs: a rollback briefly installs another one.
 */
export function dropVoidRetry(state: CertState): void {
  if (state.retryAt === undefined || state.inflight) return;
  const served = servedFacts(state)?.fingerprint256 ?? null;
  if (state.retryFor === undefined || served === state.retryFor) return;
  state.retryAt = undefined;
  state.retryFor = undefined;
  state.failures = 0;
  state.lastError = undefined;
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

/** The facts of what is served (or would be, once materialized), from memory or the pointer. */
export function servedFacts(
  state: CertState,
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

export function statusOf(state: CertState, now: number, due: number | undefined): CertificateStatus {
  const facts = servedFacts(state);
  return {
    id: state.cert.id,
    names: [...state.cert.names],
    purpose: state.cert.purpose,
    state: !facts ? 'missing' : facts.notAfter.getTime() <= now ? 'expired' : 'valid',
    renewing: state.inflight !== undefined,
    issuer: facts?.issuer ?? null,
    serial: facts?.serial ?? null,
    fingerprint256: facts?.fingerprint256 ?? null,
    notBefore: facts?.notBefore ?? null,
    notAfter: facts?.notAfter ?? null,
    nextRenewalAt: due === undefined || !Number.isFinite(due) ? null : new Date(due),
    failures: state.failures,
    lastError: state.lastError ? { code: state.lastError.code, message: state.lastError.message } : null,
  };
}
