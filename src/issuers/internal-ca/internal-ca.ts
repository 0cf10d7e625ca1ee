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
 *
 * Production mode, the root offline (`offline.ts`): `certkeeper ca init` leaves only the
 * intermediate's key in the store; what needs the root is refused here with CA_ROOT_OFFLINE
 * naming the command to run where the root key is, and `intermediateStatus()` /
 * `onIntermediateDue` warn from when the intermediate should be re-signed.
 */
import { type Clock, systemClock } from '../../clock.js';
import { createCertificate } from '../../crypto/certificate-builder.js';
import { inspectCsr } from '../../crypto/csr.js';
import { parseCertificates } from '../../crypto/inspect.js';
import { DEFAULT_KEY_TYPE, isKeyType, type PrivateKey } from '../../crypto/keys.js';
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
import * as offline from './offline.js';
import {
  DEFAULT_LOCK_TTL_MS,
  type InternalCAOptions,
  isStore,
  option,
  type RootRotationStatus,
  type RotateIntermediateOptions,
  status,
} from './options.js';
import { CaRecord } from './record.js';
import { type CaState, publishedRoots, REVOCATION_REASONS, rootOffline } from './state.js';
import * as t from './transitions.js';

export type { IntermediateStatus } from './offline.js';
export type {
  InternalCAOptions,
  RootRotationPhase,
  RootRotationStatus,
  RotateIntermediateOptions,
} from './options.js';

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
  readonly #due: offline.DueWarnings;
  #store: Store | undefined;
  readonly #ownClock: boolean;
  #clock: Clock;

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
    this.#ownClock = options.clock !== undefined;
    this.#clock = options.clock ?? systemClock;
    this.id = `internal-${this.name}`;
    this.#profile = {
      name: this.name,
      keyType,
      leafLifetimeMs: this.lifetimeMs,
      intermediateLifetimeMs,
      rootLifetimeMs,
    };
    this.#due = new offline.DueWarnings(this.#profile, this.id);
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
  bind(binding: IssuerBinding & { clock?: Clock }): void {
    this.#store ??= binding.store;
    if (!this.#ownLockTtl && binding.lockTtlMs !== undefined) this.#lockTtlMs = binding.lockTtlMs;
    if (!this.#ownClock && binding.clock) this.#clock = binding.clock;
  }

  /** The clock the CA dates by when a call gives no time (see `InternalCAOptions.clock`). */
  get clock(): Clock {
    return this.#clock;
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
    const state = await this.#record.ready(store, now, context.signal);
    const { intermediate } = state;
    if (rootOffline(state)) this.#due.check(state, now, context.logger);
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
  async beginRootRotation(store?: Store, now = this.#clock.now()): Promise<RootRotationStatus> {
    return this.#step(store, now, (s) => t.beginRootRotation(s, this.#profile, now));
  }

  /**
   * Step 2 of 3: the next root becomes the issuing root, with a fresh intermediate under it; the
   * old root stays published as `previous`. Follow with `manager.renewAll()` so every
   * certificate is re-issued under the new root.
   */
  async activateNextRoot(store?: Store, now = this.#clock.now()): Promise<RootRotationStatus> {
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
    return this.#step(options.store, this.#clock.now(), async (s) => {
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
    const at = o.now ?? now ?? this.#clock.now();
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
  async crl(store?: Store, now = this.#clock.now()): Promise<string> {
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
  async crls(store?: Store, now = this.#clock.now()): Promise<string[]> {
    return allCrls(await this.#ready(store, now), this.#profile, now);
  }

  /**
   * Starts this CA over with a new root after its state was lost (CA_ROOT_MISSING) and no backup
   * can be restored. Everything the old root signed stops verifying for peers that trust only the
   * new root: follow with `manager.renewAll()` and give the new root (resolved here) to every
   * peer. Files left of the old CA are deleted. Refuses (CA_ROTATION_STATE) while the CA exists.
   */
  async recreate(store?: Store, now = this.#clock.now()): Promise<string> {
    return (await this.#record.recreate(this.#useStore(store), now)).root.certificate.pem;
  }

  /**
   * `certkeeper ca init`: makes this CA in an empty store with its root offline. Resolves with
   * the root key, which the store never sees: the caller writes it where the operator keeps it.
   */
  async initOffline(
    options: { store?: Store; now?: number; crlValidityMs?: number } = {},
  ): Promise<{ rootKey: PrivateKey; rootCertificate: string }> {
    const now = options.now ?? this.#clock.now();
    const validity = options.crlValidityMs ?? offline.ROOT_CRL_VALIDITY_MS;
    let rootKey: PrivateKey | undefined;
    const make = async () => {
      const made = await offline.createOffline(this.#profile, now, validity);
      rootKey = made.rootKey;
      return made.state;
    };
    const state = await this.#record.recreate(this.#useStore(options.store), now, make, 'ca init');
    return { rootKey: rootKey!, rootCertificate: state.root.certificate.pem };
  }

  /**
   * `certkeeper ca sign-intermediate`: a new intermediate from the offline root key (the old one
   * retired, or revoked with `reason`), and a fresh root CRL. Follow with `manager.renewAll()`.
   */
  async signIntermediate(
    rootKey: PrivateKey,
    options: { store?: Store; reason?: RevocationReason; now?: number; crlValidityMs?: number } = {},
  ): Promise<offline.IntermediateStatus> {
    if (options.reason !== undefined)
      option(REVOCATION_REASONS.includes(options.reason), 'reason', 'must be a RevocationReason');
    const now = options.now ?? this.#clock.now();
    const crlValidityMs = options.crlValidityMs ?? offline.ROOT_CRL_VALIDITY_MS;
    const state = await this.#record.change(this.#useStore(options.store), now, (s) =>
      offline.signIntermediate(s, this.#profile, rootKey, now, {
        ...(options.reason ? { reason: options.reason } : {}),
        crlValidityMs,
      }),
    );
    return offline.intermediateStatus(state, this.#profile, now);
  }

  /** `certkeeper ca sign-crl`: the root's CRL signed by the offline root key, imported; resolves with it. */
  async signRootCrl(
    rootKey: PrivateKey,
    options: { store?: Store; now?: number; validityMs?: number } = {},
  ): Promise<string> {
    const now = options.now ?? this.#clock.now();
    const validity = options.validityMs ?? offline.ROOT_CRL_VALIDITY_MS;
    const state = await this.#record.change(this.#useStore(options.store), now, (s) =>
      offline.importRootCrl(s, this.#profile, rootKey, now, validity),
    );
    return state.rootCrl!;
  }

  /** Whether the root is offline, and the intermediate's end and state (`due`: re-sign it now). */
  async intermediateStatus(store?: Store): Promise<offline.IntermediateStatus & { rootOffline: boolean }> {
    const now = this.#clock.now();
    const state = await this.#ready(store, now);
    return { ...offline.intermediateStatus(state, this.#profile, now), rootOffline: rootOffline(state) };
  }

  /** Called once per intermediate when an issuance finds it `due` while the root is offline. */
  onIntermediateDue(listener: (status: offline.IntermediateStatus) => void): () => void {
    return this.#due.listen(listener);
  }

  #ready(store: Store | undefined, now = this.#clock.now()): Promise<CaState> {
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
