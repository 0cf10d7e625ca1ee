/**
 * The certificate manager: keeps a set of certificates valid and live on running servers.
 *
 * Where things happen:
 *   start-up (`#load`)            pointers from the store → served at once, even with the issuer down
 *   materializing (`#materialize`) chain + key read and validated, on start-up or first handshake
 *   the loop (loop.ts)            one Scheduler wakes for the next due certificate or warning;
 *                                 obtaining is queued per certificate; one attempt (attempt.ts):
 *                                 store lock → re-check (adoption.ts) → issuers in order (issue.ts)
 *   waiting (ready.ts)            ready(): served and verified, or NOT_READY with the errors
 *   shutting down (`stop`)        attempts ended and cleaned up (bounded), then what it created closed
 *   the deploy path (deploy.ts)   validate → store atomically → build context → swap → live verify → emit
 *                                 (any failure: keep or restore the previous certificate, retry later)
 *   replicas (adoption.ts)        another replica's newer certificate is adopted (cluster/sync.ts)
 */
import { setMaxListeners } from 'node:events';
import type tls from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import type { ChallengeContext } from '../challenges/solver.js';
import { AlpnChallengeRegistry, type TlsAlpnHost } from '../challenges/tls-alpn-01/registry.js';
import { liveMembers } from '../cluster/membership.js';
import { ClusterSync } from '../cluster/sync.js';
import type { PrivateKey } from '../crypto/keys.js';
import type { DeployTarget } from '../deploy/target.js';
import { CertkeeperError, describeCause } from '../errors.js';
import type { Issuer, IssuerContext, RevocationReason } from '../issuers/issuer.js';
import { type AttachmentHost, type AttachOptions, ServerAttachment } from '../server/attachment.js';
import { CertificateCache } from '../server/certificate-cache.js';
import { certificateName, issuerKey, layout } from '../store/layout.js';
import { withLock } from '../store/with-lock.js';
import { reconcile } from './adoption.js';
import { succeeded } from './attempt.js';
import { claimAtStart, learnRevoked } from './claims.js';
import type { ManagerCore, Meta } from './core.js';
import type { ManagerEvents } from './events.js';
import { type HealthReport, type ManagerHealthOptions, managerHealth } from './health.js';
import { validateGeneration } from './issue.js';
import { foreground, ProcessHold, settledWithin } from './keep-alive.js';
import { findStored, type Loaded, loadStored } from './loader.js';
import { RenewalLoop } from './loop.js';
import {
  checkTarget,
  type ManagedCertificate,
  type ManagedCertificateOptions,
  type ManagerOptions,
  optionError,
  type ResolvedOptions,
  resolveCertificate,
  resolveOptions,
} from './options.js';
import { renewalTime } from './policy.js';
import { type ReadyOptions, readyOptions, waitReady } from './ready.js';
import { forgetRevoked, type Generation } from './records.js';
import { healStored, removeLegacy } from './repair.js';
import {
  asError,
  type CertificateStatus,
  type CertState,
  newState,
  renewAllFailure,
  servedFacts,
  statusOf,
} from './state.js';

export type { ReadyOptions } from './ready.js';
export type { CertificateStatus } from './state.js';

export class CertificateManager extends EventEmitter<ManagerEvents> {
  readonly #o: ResolvedOptions;
  readonly #states = new Map<string, CertState>();
  /** What handshakes read: written here (#install, #add, unmanage), only read by the servers. */
  readonly #cache = new CertificateCache();
  readonly #attachments = new Set<ServerAttachment>();
  /** Deploy targets other than attached servers (`targets`, `addTarget`). */
  readonly #targets = new Set<DeployTarget>();
  readonly #loop: RenewalLoop;
  readonly #abort = new AbortController();
  /** TLS-ALPN-01 challenge certificates, shared by issuers (writers) and attachments (readers). */
  readonly #alpn = new AlpnChallengeRegistry();
  readonly #cluster: ClusterSync;
  #phase: 'new' | 'running' | 'stopped' = 'new';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Holds the process while running, per the `keepAlive` option. */
  readonly #hold = new ProcessHold();
  /** Background work that uses the store (ARI refreshes, reconcile passes): stop() waits for it. */
  readonly #background = new Set<Promise<unknown>>();
  /** The internals adoption.ts and deploy.ts work with. */
  readonly #core: ManagerCore;

  constructor(options: ManagerOptions) {
    super();
    this.#o = resolveOptions(options);
    this.#core = {
      options: this.#o,
      targets: () => [...this.#attachments, ...this.#targets],
      emit: (event, ...args) => this.emit(event, ...args),
      running: () => this.#phase === 'running',
      issuersFor: (cert) => this.#issuersFor(cert),
      validate: (cert, generation, anchors, allowExpired) =>
        validateGeneration(cert, generation, this.#o.clock.now(), anchors, allowExpired),
      install: (state, generation, meta, apply) =>
        this.#install(state, generation, meta, apply === false ? 'deploy' : 'targets'),
      planRenewal: (state, fingerprint, validity) => this.#planRenewal(state, fingerprint, validity),
      reschedule: (state) => this.#reschedule(state),
      succeeded,
      stopped: () => this.#phase === 'stopped',
      signal: this.#abort.signal,
      context: (signal) => this.#context(signal),
      materialize: (state) => this.#materialize(state),
    };
    // Every running obtain, store call and lock wait listens on this one signal; with a large
    // fleet and `concurrency` above 10 that is many listeners by design, not a leak.
    setMaxListeners(0, this.#abort.signal);
    this.#loop = new RenewalLoop({
      core: this.#core,
      state: (id) => this.#states.get(id),
      track: (work) => this.#track(work),
    });
    this.#cluster = new ClusterSync(
      {
        store: this.#o.store,
        clock: this.#o.clock,
        logger: this.#o.logger,
        alpn: this.#alpn,
        replicaId: this.#o.replicaId,
        onPointer: (key) => this.#onPointer(key),
        onResync: () => {
          for (const state of this.#states.values()) this.#track(reconcile(this.#core, state));
        },
        // TLS-ALPN-01 validates exact names: a wildcard's base name only when it is listed too.
        answersTlsAlpn: ({ value }) => {
          const id = this.#source.usesTlsAlpn() ? this.#cache.lookup(value) : undefined;
          return id !== undefined && this.#states.get(id)?.cert.names.includes(value) === true;
        },
      },
      { reconcileIntervalMs: this.#o.reconcileIntervalMs },
    );
    for (const cert of this.#o.certificates) this.#add(cert);
    // A handshake's miss: a job loading the certificate outside the handshake.
    this.#cache.setLoader((id) => {
      const state = this.#states.get(id);
      return state ? this.#materialize(state, 'lazy') : Promise.resolve(undefined);
    });
    for (const target of this.#o.targets) this.#targets.add(target);
    this.#alpn.onListening(() => this.#retryUnanswerable());
  }

  /**
   * An attempt that found no attached server listening to answer TLS-ALPN-01 (CHALLENGE_UNAVAILABLE,
   * not retried on the usual schedule: each retry would be an order at the CA) goes again as soon
   * as one listens; one still under way goes again once it has ended.
   */
  #retryUnanswerable(): void {
    const retry = (state: CertState) => {
      if (state.removed || state.lastError?.code !== 'CHALLENGE_UNAVAILABLE') return;
      state.blocked = undefined; // what blocked it changed: ready() waits for the next attempt
      state.retryAt = this.#o.clock.now();
      this.#reschedule(state);
    };
    for (const state of this.#states.values()) {
      if (state.inflight) void state.inflight.then(() => retry(state));
      else retry(state);
    }
  }

  /** Loads stored certificates (served at once), then keeps them renewed. Resolves after loading. */
  start(): Promise<void> {
    try {
      this.#assertNotStopped();
    } catch (error) {
      return Promise.reject(error);
    }
    // Every caller waits for the one start-up.
    this.#starting ??= (async () => {
      this.#phase = 'running';
      this.#updateHold();
      for (const issuer of this.#o.issuers)
        issuer.bind?.({ store: this.#o.store, lockTtlMs: this.#o.lockTtlMs });
      await Promise.all([...this.#states.values()].map((state) => this.#load(state)));
      await this.#cluster.start();
      // stop() may have come while loading: the loop must not start after it.
      if (this.#phase === 'running') this.#loop.start();
    })();
    return this.#starting;
  }

  /**
   * Resolves once every (or each given) certificate is served: loaded from the store, adopted,
   * or obtained with its swap live-verified and its events emitted. Rejects with NOT_READY,
   * naming each certificate not ready with its typed error, at `timeoutMs` (default twice
   * `issueTimeoutMs`), when `signal` aborts, or as soon as a certificate not ready failed with an
   * error retrying cannot fix; with MANAGER_STOPPED when the manager stops. The manager keeps
   * trying either way. `ready(['id'])` is `ready({ ids: ['id'] })`.
   */
  async ready(options?: string[] | ReadyOptions): Promise<void> {
    const o = readyOptions(options, 2 * this.#o.issueTimeoutMs);
    const states = (o.ids ?? [...this.#states.keys()]).map((id) => this.#state(id));
    // Renewal timers are unref'd (background work must not keep a process alive), so a bare
    // `await manager.ready()` in a script could see the event loop run empty before the first
    // certificate is obtained, and Node exit with code 13. Waiting is foreground work.
    await foreground(waitReady(states, this, this.#abort.signal, o));
  }

  /**
   * Stops the loop and every attempt under way, and resolves once they have ended and cleaned
   * up after themselves (challenge records, authorizations: through the store), within
   * `stopTimeoutMs`. Servers keep serving what they have. Closes what the manager created (its
   * default FileStore and InternalCA), never a store or issuer passed in: whoever creates an
   * object closes it, after `stop()` has resolved. Idempotent: every call resolves when the
   * first one is done.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    this.#phase = 'stopped';
    this.#updateHold();
    this.#loop.stop();
    this.#abort.abort();
    await this.#cluster.stop();
    // Attempts end at once (their signal fired); what they started at their issuers may still
    // be cleaning up through the store, which the caller closes next.
    const states = [...this.#states.values()];
    const work = [
      ...states.flatMap((s) => [s.inflight, s.queuedForced, ...s.lingering]),
      ...this.#background,
    ].filter((p) => p !== undefined);
    if (!(await foreground(settledWithin(Promise.allSettled(work), this.#o.stopTimeoutMs)))) {
      this.#o.logger.warn('stop: work still under way after stopTimeoutMs; stopping anyway', {
        stopTimeoutMs: this.#o.stopTimeoutMs,
        ids: states.filter((s) => s.inflight || s.lingering.size > 0).map((s) => s.cert.id),
      });
    }
    if (this.#o.ownsIssuers) {
      await Promise.allSettled([...this.#o.capabilities.values()].map(({ closable }) => closable?.close()));
    }
    if (this.#o.ownsStore) await this.#o.store.close();
  }

  /** Adds a certificate to manage (at any time). */
  manage(options: ManagedCertificateOptions): void {
    this.#assertNotStopped();
    const cert = resolveCertificate(options, 'manage(certificate)', this.#o.issuers);
    if (this.#states.has(cert.id)) throw optionError('manage(certificate).id', `duplicates id "${cert.id}"`);
    const state = this.#add(cert);
    if (this.#phase === 'running') void this.#load(state);
  }

  /** Stops managing `id`; what is stored stays. */
  unmanage(id: string): void {
    const state = this.#state(id);
    state.removed = true;
    this.#states.delete(id);
    this.#cache.remove(id);
    this.#loop.delete(id);
  }

  /** Serves managed certificates on an existing server; see `AttachOptions`. */
  attach(server: tls.Server, options: AttachOptions = {}): ServerAttachment {
    this.#assertNotStopped();
    for (const id of [
      ...(options.certificates ?? []),
      ...(options.defaultCertificate ? [options.defaultCertificate] : []),
    ]) {
      if (this.#state(id).cert.purpose !== 'server')
        throw optionError('attach.certificates', `"${id}" is not a server certificate`);
    }
    const attachment = new ServerAttachment(server, this.#source, options);
    this.#attachments.add(attachment);
    this.#updateHold();
    for (const state of this.#states.values()) {
      if (state.cert.purpose !== 'server') continue;
      if (state.current) this.#applyInBackground(attachment, state.cert.id, state.current);
      // The default certificate is the server's own context: it must be in memory.
      else if (state.stored && attachment.defaultId === state.cert.id) void this.#materialize(state);
    }
    return attachment;
  }

  detach(target: tls.Server | ServerAttachment): void {
    for (const attachment of this.#attachments) {
      if (attachment === target || attachment.server === target) {
        attachment.detach();
        this.#attachments.delete(attachment);
      }
    }
    this.#updateHold();
  }

  /**
   * Adds a deploy target (see `ManagerOptions.targets`): what is served now is applied to it at
   * once, and every later certificate it serves goes through it. Returns the function that
   * removes it again (it is not closed: whoever creates a target closes it).
   */
  addTarget(target: DeployTarget): () => void {
    this.#assertNotStopped();
    checkTarget(target, 'addTarget(target)');
    for (const other of [...this.#targets, ...this.#attachments]) {
      if (other.name === target.name)
        throw optionError('addTarget(target).name', `duplicates the target name "${target.name}"`);
    }
    this.#targets.add(target);
    for (const state of this.#states.values()) {
      if (state.current && target.serves(state.cert.id))
        this.#applyInBackground(target, state.cert.id, state.current);
    }
    return () => {
      this.#targets.delete(target);
    };
  }

  /**
   * Renews one certificate now, whatever its schedule. Resolves once the new certificate is
   * served; rejects with the attempt's typed error otherwise (the previous certificate is still
   * served and the retry is scheduled as after any failure).
   */
  async renewNow(id: string): Promise<void> {
    this.#assertNotStopped();
    const failure = await foreground(this.#loop.obtain(this.#state(id), 'forced'));
    if (failure) throw failure;
  }

  /**
   * Renews every certificate now: the "intermediate compromised, rotate everything" drill. Every
   * certificate is attempted; if any failed, rejects with RENEWAL_FAILED naming them (the first
   * failure as `cause`, every id's code in `details.failed`).
   */
  async renewAll(): Promise<void> {
    this.#assertNotStopped();
    const queue = [...this.#states.values()];
    const failed = new Map<string, CertkeeperError>();
    const worker = async () => {
      for (let state = queue.shift(); state; state = queue.shift()) {
        const failure = await this.#loop.obtain(state, 'forced');
        if (failure) failed.set(state.cert.id, failure);
      }
    };
    const total = queue.length;
    await foreground(Promise.all(Array.from({ length: Math.min(this.#o.concurrency, total) }, worker)));
    if (failed.size > 0) throw renewAllFailure(failed, total);
  }

  /**
   * Revokes the served certificate of `id` (where the issuer supports it) and replaces it. The
   * revoked generation is deleted from the store at once and is never served again after the
   * replacement, nor fallen back to (rollback, restart, damaged newer generation).
   */
  async revoke(id: string, reason: RevocationReason = 'unspecified'): Promise<void> {
    const state = this.#state(id);
    const current = state.current ?? (await this.#materialize(state));
    if (!current) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate is served for "${id}"`);
    const revoker = this.#o.capabilities.get(current.issuer)?.revoker;
    if (!revoker)
      throw new CertkeeperError('NOT_SUPPORTED', `issuer ${current.issuer} does not support revocation`);
    await revoker.revoke(
      { chainPem: current.chainPem, key: current.key },
      reason,
      this.#context(this.#abort.signal),
    );
    const serial = current.info.serialNumber;
    state.revoked ??= new Set();
    state.revoked.add(serial);
    this.emit('revoked', { id, serial, reason });
    // Recorded in the store before anything else can restore it; under the issuance lock, since
    // the pointer is rewritten. A failure here leaves the files until the replacement prunes them.
    try {
      await withLock(
        this.#o.store,
        layout.issueLock(id),
        async (lease) => {
          await forgetRevoked(this.#o.store, current.issuer, id, serial, state.revoked!, lease);
          // Loaded from an earlier version's first-name directory: that copy goes too.
          await removeLegacy(this.#o.store, current.issuer, state.cert);
        },
        { ttlMs: this.#o.lockTtlMs, signal: this.#abort.signal },
      );
    } catch (error) {
      this.#o.logger.warn('could not delete the revoked certificate from the store yet', {
        id,
        serial,
        error: describeCause(error),
      });
    }
    // Until a replacement is served, the revoked certificate still is: the caller must know.
    const failure = await this.#loop.obtain(state, 'forced');
    if (failure) throw failure;
  }

  /** The union of the issuers' trust anchors (PEM), for clients of the managed servers. */
  async trustAnchors(): Promise<string[]> {
    const lists = await Promise.all(
      [...this.#o.capabilities.values()].map(
        ({ anchors }) => anchors?.trustAnchors(this.#context(this.#abort.signal)) ?? [],
      ),
    );
    return [...new Set(lists.flat())];
  }

  /** The certificate served for `id` (no key), or null (also while not yet loaded: see `load`). */
  certificate(
    id: string,
  ): { chainPem: string; serial: string; notAfter: Date; fingerprint256: string } | null {
    const current = this.#state(id).current;
    if (!current) return null;
    const { serialNumber, notAfter, fingerprint256 } = current.info;
    return { chainPem: current.chainPem, serial: serialNumber, notAfter, fingerprint256 };
  }

  /** Key and chain of `id`, for outbound mTLS agents. Handle the key as the secret it is. */
  credentials(id: string): { key: PrivateKey; chainPem: string; serial: string } | null {
    const current = this.#state(id).current;
    return current
      ? { key: current.key, chainPem: current.chainPem, serial: current.info.serialNumber }
      : null;
  }

  /** Loads `id` into memory if it is only known by its stored pointer (large fleets load lazily). */
  async load(id: string): Promise<boolean> {
    return (await this.#materialize(this.#state(id))) !== undefined;
  }

  /**
   * Re-reads every stored pointer now and adopts newer certificates other replicas stored (what
   * the periodic reconcile does). Resolves when the pass is complete.
   */
  async reconcile(): Promise<void> {
    this.#assertNotStopped();
    await Promise.all([...this.#states.values()].map((state) => reconcile(this.#core, state)));
  }

  /** Which managed certificate answers a server name (exact, then wildcard). */
  lookup(servername: string): string | undefined {
    return this.#cache.lookup(servername);
  }

  status(): CertificateStatus[] {
    const now = this.#o.clock.now();
    return [...this.#states.values()].map((s) => statusOf(s, now, this.#loop.nextAttempt(s)));
  }

  /** Live, and whether each certificate is served, valid, not expiring, not failed to deploy (the health handler's facts). */
  health(options: ManagerHealthOptions = {}): HealthReport {
    return managerHealth(
      this.status(),
      this.#o.clock.now(),
      options,
      (id) => this.#states.get(id)?.unverified,
    );
  }

  /** This replica's id among replicas sharing the store. */
  get replicaId(): string {
    return this.#o.replicaId;
  }

  // ---- internals -------------------------------------------------------------------------

  readonly #source: AttachmentHost = {
    cache: this.#cache,
    logger: {
      debug: (m, f) => this.#o.logger.debug(m, f),
      info: (m, f) => this.#o.logger.info(m, f),
      warn: (m, f) => this.#o.logger.warn(m, f),
      error: (m, f) => this.#o.logger.error(m, f),
    },
    alpnChallenges: this.#alpn,
    usesTlsAlpn: () => this.#o.issuers.some((i) => i.challengeTypes?.includes('tls-alpn-01')),
  };

  #add(cert: ManagedCertificate): CertState {
    const state = newState(cert);
    this.#states.set(cert.id, state);
    this.#cache.add(cert.id, cert.names, cert.purpose === 'server');
    return state;
  }

  #state(id: string): CertState {
    const state = this.#states.get(id);
    if (!state) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no managed certificate with id "${id}"`);
    return state;
  }

  /** Holds the process while running: always with keepAlive true, with 'auto' while nothing is attached. */
  #updateHold(): void {
    const { keepAlive } = this.#o;
    this.#hold.set(
      this.#phase === 'running' &&
        (keepAlive === true || (keepAlive === 'auto' && this.#attachments.size === 0)),
    );
  }

  /** Applies outside the deploy path (loaded, adopted): a refusal is logged, the next deploy retries. */
  #applyInBackground(target: DeployTarget, id: string, generation: Generation): void {
    this.#track(
      target.apply(id, generation, this.#abort.signal).catch((error: unknown) =>
        this.#o.logger.warn('a deploy target did not take a certificate', {
          id,
          target: target.name,
          error: describeCause(error),
        }),
      ),
    );
  }

  /** Runs `work` in the background; stop() waits for it (bounded). */
  #track(work: Promise<unknown>): void {
    this.#background.add(work);
    const done = () => this.#background.delete(work);
    work.then(done, done);
  }

  #assertNotStopped(): void {
    if (this.#phase === 'stopped')
      throw new CertkeeperError('MANAGER_STOPPED', 'the manager has been stopped');
  }

  /** An issuer's context; solvers of an order also find where TLS-ALPN-01 is answered (`tlsAlpn`). */
  #context(signal: AbortSignal): IssuerContext & ChallengeContext {
    this.#tlsAlpn ??= {
      registry: this.#alpn,
      // The replicas to wait for, when others share the store (membership needs `watch`).
      ...(this.#o.store.watch
        ? {
            replicas: {
              self: this.#o.replicaId,
              live: () => liveMembers(this.#o.store, this.#o.clock.now()),
            },
          }
        : {}),
    };
    return {
      store: this.#o.store,
      clock: this.#o.clock,
      logger: this.#o.logger,
      signal,
      tlsAlpn: this.#tlsAlpn,
    };
  }

  #tlsAlpn: TlsAlpnHost | undefined;

  #issuersFor(cert: ManagedCertificate): Issuer[] {
    return this.#o.issuers.filter((i) => !i.supportsPurpose || i.supportsPurpose(cert.purpose));
  }

  #reportStored(state: CertState, error: CertkeeperError): void {
    this.#o.logger.warn(
      'stored certificate entry is unusable: never served (a valid generation is used, else a new one obtained)',
      { id: state.cert.id, code: error.code, error: error.message },
    );
    this.emit('storedInvalid', { id: state.cert.id, error });
  }

  /** The store could not be read (down, or an entry this process may not read): nothing is ordered for it. */
  #reportUnreadable(state: CertState, error: unknown): void {
    const failure = asError(error);
    this.#o.logger.warn(
      failure.code === 'STORE_UNREADABLE'
        ? 'stored certificate is unreadable here (permissions?); nothing is ordered, reading again'
        : 'store unreachable while loading a certificate; reading again',
      { id: state.cert.id, code: failure.code, error: describeCause(error) },
    );
  }

  #lookup(state: CertState) {
    return {
      store: this.#o.store,
      cert: state.cert,
      issuers: this.#issuersFor(state.cert).map((i) => i.id),
      validate: (generation: Generation) =>
        validateGeneration(state.cert, generation, this.#o.clock.now(), undefined, true),
      report: (error: CertkeeperError) => this.#reportStored(state, error),
      revoked: state.revoked,
    };
  }

  // ---- start-up and loading ----------------------------------------------------------------

  /** Reads the stored pointer; loads the certificate now, or on its first handshake when the set is large. */
  async #load(state: CertState): Promise<void> {
    const { cert } = state;
    let stored: Awaited<ReturnType<typeof findStored>>;
    try {
      stored = await findStored(this.#lookup(state));
    } catch (error) {
      // Unreachable or unreadable: nothing is known yet. The obtain attempt this schedules needs
      // the store too (its lock), and re-reads it under the lock before ordering anything.
      this.#reportUnreadable(state, error);
      stored = null;
    }
    if (state.removed || !stored) {
      this.#reschedule(state);
      return;
    }
    learnRevoked(state, stored.meta);
    claimAtStart(state, stored.meta, this.#o.logger);
    state.stored = stored;
    this.#planRenewal(state, stored.meta.fingerprint256, {
      notBefore: new Date(stored.meta.notBefore),
      notAfter: new Date(stored.meta.notAfter),
    });
    if (state.replaces) state.renewAt = this.#o.clock.now();
    const eager = cert.purpose === 'client' || this.#states.size <= this.#o.eagerLoadLimit;
    if (eager) await this.#materialize(state, 'eager', true);
    // Lazily loaded, or an eager load the store could not serve right now: the pointer is known,
    // the first handshake (or the retry below) loads the rest.
    if (!state.current && state.stored) state.ready.resolve();
    if (state.stored || state.current) {
      const facts = servedFacts(state)!;
      this.emit('loaded', {
        id: cert.id,
        serial: facts.serial,
        notAfter: facts.notAfter,
        issuer: facts.issuer,
      });
    }
    this.#reschedule(state);
  }

  /**
   * Reads and validates the stored generation into memory (once; concurrent callers share it).
   * What loading worked around is repaired in the store: awaited at start-up (`awaitRepair`),
   * in the background when a handshake or a call is waiting for the certificate.
   */
  #materialize(
    state: CertState,
    mode: 'eager' | 'lazy' = 'eager',
    awaitRepair = false,
  ): Promise<Generation | undefined> {
    if (state.current) return Promise.resolve(state.current);
    const stored = state.stored;
    if (!stored) return Promise.resolve(undefined);
    state.loading ??= (async () => {
      let loaded: Loaded | null;
      try {
        loaded = await loadStored(this.#lookup(state), stored);
      } catch (error) {
        // Unreachable or unreadable, not damaged: keep the pointer and read again on the next
        // handshake or attempt; re-issuing here would order a certificate the store still holds.
        state.loading = undefined;
        this.#reportUnreadable(state, error);
        this.#o.clock.setTimeout(() => {
          if (this.#phase === 'running' && !state.current && !state.removed) void this.#materialize(state);
        }, 2_000);
        return undefined;
      }
      state.loading = undefined;
      if (state.current) return state.current;
      if (!loaded) {
        // Nothing servable: heal by obtaining a new certificate now.
        state.stored = undefined;
        state.renewAt = undefined;
        this.#reschedule(state);
        return undefined;
      }
      this.#install(state, loaded.generation, loaded.meta, mode === 'lazy' ? 'lazy' : 'targets');
      if (state.replaces) {
        // Another configuration's certificate, valid for this one: served until replaced, at once.
        state.renewAt = this.#o.clock.now();
        this.#reschedule(state);
      }
      // Written back once, so the next start does not work around the same damage again.
      if (loaded.heal) {
        const repair = healStored(
          { store: this.#o.store, lockTtlMs: this.#o.lockTtlMs, logger: this.#o.logger },
          state.cert,
          stored,
          loaded,
          state.revoked ?? [],
        );
        if (awaitRepair) await repair;
      }
      return loaded.generation;
    })();
    return state.loading;
  }

  /** Renewal time for a generation; the jitter sample is drawn once per generation. */
  #planRenewal(state: CertState, fingerprint: string, validity: { notBefore: Date; notAfter: Date }): void {
    if (state.sampleFor !== fingerprint) {
      state.sample = Math.random();
      state.sampleFor = fingerprint;
      state.warned = new Set();
      state.windowRefreshAt = undefined;
    }
    state.renewAt = renewalTime(validity, this.#o.policy, state.sample);
  }

  /** Makes `generation` current in memory and on every attached server. */
  /**
   * Makes `generation` current: in memory and in the cache handshakes read, then on the targets
   * serving it: all of them (`targets`: loaded, adopted), none (`deploy`: deploy/deploy.ts applies
   * and verifies), or only the servers whose own context it is (`lazy`: a handshake's load job,
   * which starts no other work; its renewal window is asked for by the loop).
   */
  #install(
    state: CertState,
    generation: Generation,
    meta: Meta,
    apply: 'targets' | 'deploy' | 'lazy',
  ): Generation | undefined {
    const replaced = state.current;
    state.current = generation;
    this.#cache.set(state.cert.id, generation);
    state.currentMeta = meta;
    state.stored = { issuer: generation.issuer, meta: { ...meta, previous: null } };
    this.#planRenewal(state, generation.info.fingerprint256, generation.info);
    const { id } = state.cert;
    // Attached servers take it before this returns (their apply works synchronously).
    if (apply !== 'deploy' && state.cert.purpose === 'server') {
      for (const attachment of this.#attachments)
        if (apply === 'targets' || attachment.defaultId === id)
          this.#applyInBackground(attachment, id, generation);
    }
    if (apply === 'targets') {
      for (const target of this.#targets)
        if (target.serves(id)) this.#applyInBackground(target, id, generation);
    }
    // Not while an attempt runs: its swap is not verified yet (the attempt resolves it).
    if (!state.inflight) state.ready.resolve();
    if (apply !== 'lazy') this.#loop.refreshWindow(state, generation);
    else if (this.#o.capabilities.get(generation.issuer)?.window) {
      state.windowRefreshAt = this.#o.clock.now();
      this.#reschedule(state);
    }
    return replaced;
  }

  /** When `state` is next due (loop.ts). */
  #reschedule(state: CertState): void {
    this.#loop.reschedule(state);
  }

  // ---- replicas (adoption.ts) -----------------------------------------------------------

  #onPointer(key: string): void {
    const parts = layout.parseCertificate(key);
    if (parts?.rest !== 'current.json') return;
    for (const state of this.#states.values()) {
      // Under its id; or under its first name, by a replica still running an earlier version.
      const mine =
        parts.id !== undefined
          ? parts.id === state.cert.id
          : parts.legacyName === certificateName(state.cert.primary);
      if (mine && this.#issuersFor(state.cert).some((i) => issuerKey(i.id) === parts.issuer))
        void reconcile(this.#core, state);
    }
  }
}

/** Creates a certificate manager; call `start()` to load and begin renewing. */
export function createCertificateManager(options: ManagerOptions): CertificateManager {
  return new CertificateManager(options);
}
