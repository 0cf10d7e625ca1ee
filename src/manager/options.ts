/**
 * The manager's one options object, validated eagerly and once: every message names the option
 * (`certificates[1].names[0]`) and its bound, so a typo fails at start-up, not at 3 a.m. when the
 * first renewal runs.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import { ROLLBACK_POLICIES, type RollbackPolicy } from '../deploy/deploy.js';
import type { DeployTarget } from '../deploy/target.js';
import { describeCause } from '../errors.js';
import { type CooldownOptions, validateCooldownOptions } from '../issuers/cooldown.js';
import { InternalCA } from '../issuers/internal-ca.js';
import { capabilitiesOf, type Issuer, type IssuerCapabilities } from '../issuers/issuer.js';
import { defaultLogger, type Logger } from '../logger.js';
import { FileStore } from '../store/file-store.js';
import { issuerKey } from '../store/layout.js';
import type { Store } from '../store/store.js';
import {
  type CertificateConfig,
  type ManagedCertificateOptions,
  optionError,
  refuseUnknown,
  resolveCertificate,
} from './certificate-options.js';
import { type RenewalPolicy, validatePolicy } from './policy.js';
import { type RevocationCheckOptions, resolveRevocationCheck } from './revocation-watch.js';

export type { CertificateConfig, ManagedCertificateOptions } from './certificate-options.js';
export { optionError, resolveCertificate } from './certificate-options.js';

export interface ManagerOptions {
  /** Default: a FileStore in `$CERTKEEPER_DIR` or `./.certkeeper`. */
  store?: Store;
  /** One issuer, or several tried in order. Default: an InternalCA (24 h certificates). */
  issuer?: Issuer | Issuer[];
  certificates: ManagedCertificateOptions[];
  renewal?: Partial<RenewalPolicy>;
  logger?: Logger;
  clock?: Clock;
  /** Renewals that may run at once (default 4). */
  concurrency?: number;
  /** Lease of the per-certificate store lock while obtaining (default 60 s, renewed while held). */
  lockTtlMs?: number;
  /** Timeout of one issuance attempt (default 5 minutes). */
  issueTimeoutMs?: number;
  /**
   * Up to this many certificates are loaded (parsed, validated) at start-up; beyond it only
   * their pointers are read and each is loaded on its first handshake (default 500).
   */
  eagerLoadLimit?: number;
  /** Re-read every stored pointer this often, to pick up other replicas' work (default 60 s; 0 off). */
  reconcileIntervalMs?: number;
  /** This replica's id among replicas sharing the store (default: random). */
  replicaId?: string;
  /**
   * Whether the running manager keeps the Node process alive (from `start()` to `stop()`).
   * `'auto'` (default): while no server is attached, since a manager with nothing attached is a
   * renewal daemon or a client-certificate service, whose process ending silently after the
   * first certificate would stop renewal unnoticed; an attached server keeps the process alive
   * by itself, and once it closes the manager must not hold the process any longer. `true`:
   * always while running; `false`: never (background work only, as timers are unref'd).
   */
  keepAlive?: boolean | 'auto';
  /**
   * How long `stop()` waits for attempts that were under way to end and clean up after
   * themselves (challenge records, authorizations), default 20 s; then it resolves anyway.
   */
  stopTimeoutMs?: number;
  /**
   * Where certificates go besides the servers passed to `attach` (files and reload commands,
   * other processes): each new certificate is applied to every target that serves it and
   * verified there (see deploy/target.ts). More can be added with `manager.addTarget`.
   */
  targets?: DeployTarget[];
  /**
   * After a failed deploy (a target refused the certificate or its live check failed): put
   * every target back to the previous certificate (`'all'`, default: the fleet never serves two
   * generations of one certificate) or only the targets that failed (`'target'`: the others
   * keep the new one, and the renewal stands). See docs/architecture.md.
   */
  rollback?: RollbackPolicy;
  /** How long an issuer whose CA failed goes behind the others (issuers/cooldown.ts). */
  issuerCooldown?: CooldownOptions;
  /** CRLs of served certificates checked; a revoked one replaced (revocation-watch.ts). Default on. */
  revocationCheck?: boolean | RevocationCheckOptions;
}

/** The manager's options, by the name the rest of the library uses. */
export type CertificateManagerOptions = ManagerOptions;

/** Every key of `ManagerOptions`: any other is refused (a typo would silently keep a default). */
const MANAGER_OPTIONS: readonly (keyof ManagerOptions)[] = [
  'store',
  'issuer',
  'certificates',
  'renewal',
  'logger',
  'clock',
  'concurrency',
  'lockTtlMs',
  'issueTimeoutMs',
  'eagerLoadLimit',
  'reconcileIntervalMs',
  'replicaId',
  'keepAlive',
  'stopTimeoutMs',
  'targets',
  'rollback',
  'issuerCooldown',
  'revocationCheck',
];
export interface ResolvedOptions {
  store: Store;
  /** The manager created the store (the default FileStore): `stop()` closes it. */
  ownsStore: boolean;
  issuers: Issuer[];
  /** The manager created the issuer (the default InternalCA): `stop()` closes it. */
  ownsIssuers: boolean;
  /** What each issuer can do beyond `issue`, by id: detected once, here. */
  capabilities: ReadonlyMap<string, IssuerCapabilities>;
  certificates: CertificateConfig[];
  policy: RenewalPolicy;
  logger: Logger;
  clock: Clock;
  concurrency: number;
  lockTtlMs: number;
  issueTimeoutMs: number;
  eagerLoadLimit: number;
  reconcileIntervalMs: number;
  replicaId: string;
  keepAlive: boolean | 'auto';
  stopTimeoutMs: number;
  targets: DeployTarget[];
  rollback: RollbackPolicy;
  issuerCooldown: CooldownOptions;
  revocationCheck: RevocationCheckOptions | false;
}

function hasMethods(value: unknown, methods: string[]): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
  );
}

/**
 * Each issuer's accounts and certificates live under `issuerKey(id)`, which folds case, spaces and
 * URLs (and cannot change without moving every stored record): two ids naming one directory
 * ("Internal CA", "internal_ca") would share certificates, pointers and accounts.
 */
function refuseSharedDirectories(issuers: Issuer[], list: boolean): void {
  const seen = new Map<string, number>();
  issuers.forEach((issuer, i) => {
    const path = list ? `issuer[${i}]` : 'issuer';
    let key: string;
    try {
      key = issuerKey(issuer.id);
    } catch (error) {
      throw optionError(
        path,
        `id ${JSON.stringify(issuer.id.slice(0, 80))} names no store directory (${describeCause(error)})`,
      );
    }
    const other = seen.get(key);
    if (other !== undefined) {
      throw optionError(
        path,
        `id ${JSON.stringify(issuer.id)} is stored in the same directory ("${key}") as issuer[${other}] ` +
          `(${JSON.stringify(issuers[other]!.id)}): they would share certificates and accounts; give them ids that differ in more than case or punctuation`,
      );
    }
    seen.set(key, i);
  });
}

export function resolveOptions(options: ManagerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw optionError('', 'must be an object');
  refuseUnknown(options, MANAGER_OPTIONS, '');
  let ownsStore = false;
  let store = options.store;
  if (store === undefined) {
    store = new FileStore({ directory: resolve(process.env.CERTKEEPER_DIR ?? '.certkeeper') });
    ownsStore = true;
  } else if (
    !hasMethods(store, ['get', 'put', 'delete', 'list', 'stat', 'lock', 'tryLock', 'renewLock', 'unlock'])
  ) {
    throw optionError('store', 'must implement the Store interface');
  }

  const ownsIssuers = options.issuer === undefined;
  const issuers: Issuer[] = options.issuer === undefined ? [new InternalCA()] : [options.issuer].flat();
  if (issuers.length === 0) throw optionError('issuer', 'must not be an empty list');
  issuers.forEach((issuer, i) => {
    const path = Array.isArray(options.issuer) ? `issuer[${i}]` : 'issuer';
    if (!hasMethods(issuer, ['issue']) || typeof issuer.id !== 'string' || issuer.id === '') {
      throw optionError(path, 'must implement the Issuer interface (an id and issue())');
    }
  });
  if (new Set(issuers.map((i) => i.id)).size !== issuers.length)
    throw optionError('issuer', 'ids must be unique');
  refuseSharedDirectories(issuers, Array.isArray(options.issuer));

  if (!Array.isArray(options.certificates)) throw optionError('certificates', 'must be an array');
  const certificates = options.certificates.map((c, i) =>
    resolveCertificate(c, `certificates[${i}]`, issuers),
  );
  const ids = new Set<string>();
  certificates.forEach((c, i) => {
    if (ids.has(c.id)) throw optionError(`certificates[${i}].id`, `duplicates id "${c.id}"`);
    ids.add(c.id);
  });

  const logger = options.logger ?? defaultLogger;
  if (!hasMethods(logger, ['debug', 'info', 'warn', 'error']))
    throw optionError('logger', 'must have debug, info, warn and error methods');
  const clock = options.clock ?? systemClock;
  if (!hasMethods(clock, ['now', 'setTimeout', 'clearTimeout']))
    throw optionError('clock', 'must have now, setTimeout and clearTimeout');

  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw optionError('concurrency', 'must be an integer in 1..256');
  const lockTtlMs = options.lockTtlMs ?? 60_000;
  if (!Number.isFinite(lockTtlMs) || lockTtlMs < 1_000)
    throw optionError('lockTtlMs', 'must be at least 1000');
  const issueTimeoutMs = options.issueTimeoutMs ?? 300_000;
  if (!Number.isFinite(issueTimeoutMs) || issueTimeoutMs < 1_000)
    throw optionError('issueTimeoutMs', 'must be at least 1000');

  const eagerLoadLimit = options.eagerLoadLimit ?? 500;
  if (!Number.isInteger(eagerLoadLimit) || eagerLoadLimit < 0)
    throw optionError('eagerLoadLimit', 'must be a non-negative integer');
  const reconcileIntervalMs = options.reconcileIntervalMs ?? 60_000;
  // Each pass re-reads every pointer: more often than once a second is a busy loop on the store.
  if (!Number.isFinite(reconcileIntervalMs) || (reconcileIntervalMs !== 0 && reconcileIntervalMs < 1_000)) {
    throw optionError('reconcileIntervalMs', 'must be 0 (off) or at least 1000');
  }
  const replicaId =
    options.replicaId ??
    `${hostname()
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(0, 40)}-${process.pid}-${randomBytes(4).toString('hex')}`;
  if (typeof replicaId !== 'string' || !/^[A-Za-z0-9._-]{1,100}$/.test(replicaId)) {
    throw optionError('replicaId', 'must be 1-100 of [A-Za-z0-9._-]');
  }
  const keepAlive = options.keepAlive ?? 'auto';
  if (keepAlive !== true && keepAlive !== false && keepAlive !== 'auto')
    throw optionError('keepAlive', "must be true, false or 'auto'");
  const stopTimeoutMs = options.stopTimeoutMs ?? 20_000;
  if (!Number.isFinite(stopTimeoutMs) || stopTimeoutMs < 0)
    throw optionError('stopTimeoutMs', 'must be a number of milliseconds >= 0');
  const targets = options.targets ?? [];
  if (!Array.isArray(targets)) throw optionError('targets', 'must be an array of deploy targets');
  targets.forEach((target, i) => {
    checkTarget(target, `targets[${i}]`);
  });
  if (new Set(targets.map((t) => t.name)).size !== targets.length)
    throw optionError('targets', 'must have unique names');
  const rollback = options.rollback ?? 'all';
  if (!ROLLBACK_POLICIES.includes(rollback)) throw optionError('rollback', "must be 'all' or 'target'");
  const issuerCooldown = validateCooldownOptions(options.issuerCooldown, 'issuerCooldown');
  const revocationCheck = resolveRevocationCheck(options.revocationCheck, 'revocationCheck');
  const policy = validatePolicy(options.renewal, 'options.renewal');
  // Last, so that any other problem of a configuration under construction is named first.
  if (certificates.length === 0) {
    throw optionError(
      'certificates',
      'must list at least one certificate (a manager with none would run and never serve anything)',
    );
  }

  return {
    store,
    ownsStore,
    issuers,
    ownsIssuers,
    capabilities: new Map(issuers.map((issuer) => [issuer.id, capabilitiesOf(issuer)])),
    certificates,
    policy,
    logger,
    clock,
    concurrency,
    lockTtlMs,
    issueTimeoutMs,
    eagerLoadLimit,
    reconcileIntervalMs,
    replicaId,
    keepAlive,
    stopTimeoutMs,
    targets,
    rollback,
    issuerCooldown,
    revocationCheck,
  };
}

/** Refuses what is not a deploy target: a name and the four methods of the contract. */
export function checkTarget(target: unknown, path: string): asserts target is DeployTarget {
  if (!hasMethods(target, ['serves', 'apply', 'verify', 'rollback']))
    throw optionError(path, 'must be a deploy target (serves, apply, verify and rollback)');
  const { name } = target as { name?: unknown };
  if (typeof name !== 'string' || name.length === 0 || name.length > 200)
    throw optionError(`${path}.name`, 'must be a non-empty string');
}
