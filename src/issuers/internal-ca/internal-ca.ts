/**
 * The embedded CA: a root and an intermediate kept in the store, issuing short-lived server and
 * client certificates. It is the zero-configuration issuer for development, demos and small
 * fleets; every replica that shares the store shares the CA.
 *
 * Its whole state is one record in the store (`state.ts`), changed under a store lock with one
 * write (`record.ts`), so replicas starting together make exactly one CA, a crash never leaves a
 * key of one certificate beside another certificate, and a store writer without the encryption
 * key cannot plant a root: nothing the CA trusts is read from anywhere else. The state is re-read
 * on every issuance (a replica never signs with an intermediate another replica replaced).
 * A root that disappears is an error (CA_ROOT_MISSING) until someone restores it or calls
 * `recreate()`; it is never silently replaced.
 */
import { createCertificate } from '../../crypto/certificate-builder.js';
import { inspectCsr } from '../../crypto/csr.js';
import { parseCertificates } from '../../crypto/inspect.js';
import { DEFAULT_KEY_TYPE, isKeyType, type KeyType } from '../../crypto/keys.js';
import { CertkeeperError, optionError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerBinding,
  IssuerContext,
  RevocationReason,
} from '../issuer.js';
import { type CaProfile, DAY, leafBackdateMs } from './authority.js';
import { allCrls, intermediateCrl } from './crl.js';
import { CaRecord } from './record.js';
import { type CaState, publishedRoots, REVOCATION_REASONS } from './state.js';
import * as t from './transitions.js';

/** Options of `InternalCA`. */
export interface InternalCAOptions {
  /** Names the CA in the store and in its subject. Default `certkeeper-internal`. */
  name?: string;
  /** Leaf lifetime. Default 24 h; at least 1 s (a minute or more outside tests). */
  lifetimeMs?: number;
  /** Default 10 years. */
  rootLifetimeMs?: number;
  /** Default 1 year; re-issued automatically when less than 10 leaf lifetimes (or 1/3) remain. */
  intermediateLifetimeMs?: number;
  /** Key type of the CA keys. Default ECDSA P-256. */
  keyType?: KeyType;
  /** `purpose` (default): serverAuth for servers, clientAuth for clients. `both`: both EKUs always. */
  extKeyUsage?: 'purpose' | 'both';
  /** Where the CA keeps its material; default: the store of the manager using it. */
  store?: Store;
  /**
   * Lease of the CA's store lock (renewed while held); after a crash, other processes wait at
   * most this long. Default: the manager's `lockTtlMs` (60 s unless set), at least 1000.
   */
  lockTtlMs?: number;
}

/**
 * Where a root rotation stands (see `beginRootRotation`):
 * `none` one root; `introduced` a next root is published beside the issuing one but signs nothing
 * yet; `activated` the new root issues, the previous one is still published until finished.
 */
export type RootRotationPhase = 'none' | 'introduced' | 'activated';

/** Where a rotation of the embedded CA's root stands. */
export interface RootRotationStatus {
  phase: RootRotationPhase;
  /** SHA-256 fingerprints (lowercase hex) of the issuing, next and previous roots. */
  current: string;
  next: string | null;
  previous: string | null;
}

/** Options of `InternalCA.rotateIntermediate`. */
export interface RotateIntermediateOptions {
  store?: Store;
  /**
   * Revoke the replaced intermediate for this reason (the compromise drill: `keyCompromise`).
   * The root's CRL then lists it, so verifiers using `crls()` refuse every leaf under it,
   * including any a thief of its key makes; re-issue the leaves (`manager.renewAll()`) first.
   * Without a reason the old intermediate is retired: its leaves stay valid until they expire.
   */
  reason?: RevocationReason;
  now?: number;
}

const DEFAULT_LOCK_TTL_MS = 60_000;

function option(condition: boolean, name: string, bound: string): void {
  if (!condition) {
    throw optionError(name, bound, 'InternalCA');
  }
}

const isStore = (value: unknown): value is Store =>
  typeof value === 'object' && value !== null && typeof (value as Store).get === 'function';

/** An embedded CA (root and intermediate kept in the store) issuing short-lived certificates, with CRLs and root rotation. */
export class InternalCA implements Issuer {
  readonly id: string;
  readonly name: string;
  readonly lifetimeMs: number;
  readonly #profile: CaProfile;
  readonly #ekuMode: 'purpose' | 'both';
  readonly #ownLockTtl: boolean;
  #lockTtlMs: number;
  readonly #record: CaRecord;
  /** Told after this process changed the published roots (see `onAnchorsChanged`). */
  readonly #anchorListeners = new Set<() => void>();
  #store: Store | undefined;

  constructor(options: InternalCAOptions = {}) {
    this.name = options.name ?? 'certkeeper-internal';
    option(/^[a-z0-9][a-z0-9._-]{0,63}$/.test(this.name), 'name', 'must be 1-64 of [a-z0-9._-]');
    this.lifetimeMs = options.lifetimeMs ?? DAY;
    option(
      Number.isFinite(this.lifetimeMs) && this.lifetimeMs >= 1000,
      'lifetimeMs',
      'must be at least 1000',
    );
    const rootLifetimeMs = options.rootLifetimeMs ?? 3650 * DAY;
    const intermediateLifetimeMs = options.intermediateLifetimeMs ?? 365 * DAY;
    option(
      intermediateLifetimeMs > this.lifetimeMs && rootLifetimeMs >= intermediateLifetimeMs,
      'intermediateLifetimeMs',
      'must exceed lifetimeMs and not exceed rootLifetimeMs',
    );
    const keyType = options.keyType ?? DEFAULT_KEY_TYPE;
    option(isKeyType(keyType), 'keyType', 'must be a supported key type');
    this.#ekuMode = options.extKeyUsage ?? 'purpose';
    option(['purpose', 'both'].includes(this.#ekuMode), 'extKeyUsage', "must be 'purpose' or 'both'");
    this.#ownLockTtl = options.lockTtlMs !== undefined;
    this.#lockTtlMs = options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
    option(Number.isFinite(this.#lockTtlMs) && this.#lockTtlMs >= 1000, 'lockTtlMs', 'must be at least 1000');
    this.#store = options.store;
    this.id = `internal-${this.name}`;
    this.#profile = {
      name: this.name,
      keyType,
      leafLifetimeMs: this.lifetimeMs,
      intermediateLifetimeMs,
      rootLifetimeMs,
    };
    this.#record = new CaRecord(
      this.#profile,
      this.id,
      () => this.#lockTtlMs,
      () => this.#anchorsChanged(),
    );
  }

  /**
   * Called by a manager's `start()`: the CA keeps its material in the manager's store (unless it
   * was given one) and leases its lock for the manager's `lockTtlMs` (unless given its own), so
   * a trust source or a rotation that uses the CA before any issuance finds the CA in its store.
   */
  bind(binding: IssuerBinding): void {
    this.#store ??= binding.store;
    if (!this.#ownLockTtl && binding.lockTtlMs !== undefined) this.#lockTtlMs = binding.lockTtlMs;
  }

  /** The store the CA keeps its material in: given, bound by a manager, or first used. */
  get store(): Store | undefined {
    return this.#store;
  }

  supportsPurpose(_purpose: CertificatePurpose): boolean {
    return true;
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    const store = this.#useStore(context.store);
    const csr = await inspectCsr(request.csr.der);
    if (!csr.signatureValid)
      throw new CertkeeperError('ISSUER_FAILED', 'internal CA: CSR signature is invalid');
    const now = context.clock.now();
    const { intermediate } = await this.#record.ready(store, now, context.signal);
    // A warm CA needs no lock (which would see the signal): a given-up attempt gets no certificate.
    if (context.signal.aborted) {
      throw new CertkeeperError('ISSUER_UNAVAILABLE', `${this.id}: the issuance was aborted`, {
        details: { issuer: this.id, aborted: true },
      });
    }
    const notBefore = new Date(now - leafBackdateMs(this.lifetimeMs));
    const notAfter = new Date(
      Math.min(notBefore.getTime() + this.lifetimeMs, intermediate.certificate.info.notAfter.getTime()),
    );
    const leaf = await createCertificate({
      publicKey: csr.publicKey,
      issuer: intermediate,
      commonName: request.names.find((n) => !n.includes(':') && n.length <= 64 && !/^[\d.]+$/.test(n)),
      names: request.names,
      notBefore,
      notAfter,
      extKeyUsage:
        this.#ekuMode === 'both'
          ? ['serverAuth', 'clientAuth']
          : [request.purpose === 'client' ? 'clientAuth' : 'serverAuth'],
    });
    return { chainPem: leaf.pem + intermediate.certificate.pem };
  }

  /**
   * The roots to trust: the issuing root, plus during a rotation the next root (published before
   * it signs anything) or the previous one (published until every certificate it covers is gone).
   */
  async trustAnchors(context: IssuerContext): Promise<string[]> {
    return this.publishedRoots(context.store);
  }

  /** `trustAnchors` without an issuer context. Creates the CA on first call (empty store). */
  async publishedRoots(store?: Store): Promise<string[]> {
    return publishedRoots(await this.#ready(store));
  }

  /** The root certificate (PEM) that clients must trust. Creates the CA on first call. */
  async rootCertificate(store?: Store): Promise<string> {
    return (await this.#ready(store)).root.certificate.pem;
  }

  /** Registers `listener` for changes to `publishedRoots` made through this object. */
  onAnchorsChanged(listener: () => void): () => void {
    this.#anchorListeners.add(listener);
    return () => this.#anchorListeners.delete(listener);
  }

  async rootRotation(store?: Store): Promise<RootRotationStatus> {
    return status(await this.#ready(store));
  }

  /**
   * Root rotation, step 1 of 3: creates the next root and publishes it beside the issuing one.
   * Nothing is signed by it yet, so every peer can learn to trust it (refresh the trust stores)
   * before any certificate depends on it. Idempotent while `introduced`.
   */
  async beginRootRotation(store?: Store, now = Date.now()): Promise<RootRotationStatus> {
    return this.#step(store, now, (s) => t.beginRootRotation(s, this.#profile, now));
  }

  /**
   * Step 2 of 3: the next root becomes the issuing root, with a fresh intermediate under it; the
   * old root stays published as `previous`. Follow with `manager.renewAll()` so every
   * certificate is re-issued under the new root.
   */
  async activateNextRoot(store?: Store, now = Date.now()): Promise<RootRotationStatus> {
    return this.#step(store, now, (s) => t.activateNextRoot(s, this.#profile, now));
  }

  /**
   * Step 3 of 3: stops publishing the previous root. `guard` receives the roots that will remain
   * and may throw to refuse (a TrustStore's `assertUpdate` refuses while a served certificate
   * still chains only to the old root); nothing changes then.
   */
  async finishRootRotation(
    options: { store?: Store; guard?: (remaining: string[]) => void | Promise<void> } = {},
  ): Promise<RootRotationStatus> {
    return this.#step(options.store, Date.now(), async (s) => {
      const next = t.finishRootRotation(s, this.#profile);
      await options.guard?.(publishedRoots(next));
      return next;
    });
  }

  async #step(
    store: Store | undefined,
    now: number,
    fn: (state: CaState) => Promise<CaState> | CaState,
  ): Promise<RootRotationStatus> {
    return status(await this.#record.change(this.#useStore(store), now, fn));
  }

  /**
   * Replaces the intermediate with a fresh one from the root; with `{ reason }` the old one is
   * revoked (the "intermediate compromised" drill: `{ reason: 'keyCompromise' }`). Follow with
   * `manager.renewAll()` so every leaf is re-issued under the new one. (`rotateIntermediate(store,
   * now)`, the older form, is still accepted.)
   */
  async rotateIntermediate(options: RotateIntermediateOptions | Store = {}, now?: number): Promise<void> {
    const o: RotateIntermediateOptions = isStore(options) ? { store: options } : (options ?? {});
    if (o.reason !== undefined) {
      option(REVOCATION_REASONS.includes(o.reason), 'reason', 'must be a RevocationReason');
    }
    const at = o.now ?? now ?? Date.now();
    await this.#record.change(this.#useStore(o.store), at, (s) =>
      t.replaceIntermediate(s, this.#profile, at, o.reason),
    );
  }

  /**
   * Revokes a leaf (its serial goes on its intermediate's CRL) or one of this CA's intermediates
   * (on the root's CRL; the current one is replaced at once).
   */
  async revoke(
    certificate: { chainPem: string },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void> {
    const [leaf] = parseCertificates(certificate.chainPem);
    const now = context.clock.now();
    await this.#record.change(
      this.#useStore(context.store),
      now,
      (s) => t.revoke(s, this.#profile, leaf!, reason, now),
      context.signal,
    );
  }

  /** Serials revoked so far (lowercase hex). */
  async revokedSerials(store?: Store): Promise<string[]> {
    const state = await this.#record.read(this.#useStore(store));
    return state ? state.revoked.map((e) => e.serial) : [];
  }

  /**
   * A CRL (PEM) signed by the current intermediate, listing the revoked leaves. Node's `tls`
   * checks the whole client chain once a CRL is set (CRL_CHECK_ALL), so a Node server needs
   * `crls()`, which adds the root's CRL (revoked intermediates) and the others.
   */
  async crl(store?: Store, now = Date.now()): Promise<string> {
    return intermediateCrl(await this.#ready(store, now), now, this.lifetimeMs);
  }

  /**
   * Every CRL a verifier that checks the whole chain needs: the intermediate's (revoked leaves,
   * as `crl()`) and the root's (revoked intermediates) first; then the same for every replaced
   * intermediate whose leaves may still be in service (an automatic renewal, `rotateIntermediate`,
   * a root rotation) and, during a root rotation, the previous root's. Without them a verifier
   * that checks CRLs refuses those leaves (no CRL for their issuer) until they are re-issued.
   * Pass the list as the `crl` option of a Node `tls` / `https` server that requests client
   * certificates, and refresh it on a schedule (`nextUpdate` is at most a day away).
   */
  async crls(store?: Store, now = Date.now()): Promise<string[]> {
    return allCrls(await this.#ready(store, now), now, this.lifetimeMs);
  }

  /**
   * Starts this CA over with a new root after its state was lost (CA_ROOT_MISSING) and no backup
   * can be restored. Everything the old root signed stops verifying for peers that trust only the
   * new root: follow with `manager.renewAll()` and give the new root (resolved here) to every
   * peer. Files left of the old CA are deleted. Refuses (CA_ROTATION_STATE) while the CA exists.
   */
  async recreate(store?: Store, now = Date.now()): Promise<string> {
    return (await this.#record.recreate(this.#useStore(store), now)).root.certificate.pem;
  }

  #ready(store: Store | undefined, now = Date.now()): Promise<CaState> {
    return this.#record.ready(this.#useStore(store), now);
  }

  #anchorsChanged(): void {
    for (const listener of this.#anchorListeners) listener();
  }

  #useStore(store: Store | undefined): Store {
    const chosen = this.#store ?? store;
    if (!chosen) {
      throw optionError(
        'store',
        'is not set yet: pass options.store or use it through a manager',
        'InternalCA',
      );
    }
    this.#store ??= chosen;
    return chosen;
  }
}

function status(state: CaState): RootRotationStatus {
  const current = state.root.certificate.info.fingerprint256;
  return {
    phase: state.previous ? 'activated' : state.next ? 'introduced' : 'none',
    current,
    next: state.next?.certificate.info.fingerprint256 ?? null,
    previous: state.previous?.certificate.info.fingerprint256 ?? null,
  };
}
