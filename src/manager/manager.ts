/**
 * The certificate manager: keeps a set of certificates valid and live on running servers.
 *
 * Where things happen:
 *   start-up (`#load`)            pointers from the store → served at once, even with the issuer down
 *   materializing (`#materialize`) chain + key read and validated, on start-up or first handshake
 *   the loop (`#tick`)            one Scheduler wakes for the next due certificate or warning
 *   obtaining (`#obtain`)         queued per certificate; one attempt (attempt.ts): store lock →
 *                                 re-check (adoption.ts) → issuers in order (issue.ts)
 *   the deploy path (deploy.ts)   validate → store atomically → build context → swap → live verify → emit
 *                                 (any failure: keep or restore the previous certificate, retry later)
 *   replicas (adoption.ts)        another replica's newer certificate is adopted (cluster/sync.ts)
 */
import { setMaxListeners } from 'node:events';
import type tls from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import { AlpnChallengeRegistry } from '../challenges/alpn-registry.js';
import { ClusterSync } from '../cluster/sync.js';
import type { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, describeCause } from '../errors.js';
import type { Issuer, IssuerContext, RevocationReason } from '../issuers/issuer.js';
import { type AttachOptions, type CertificateSource, ServerAttachment } from '../server/attachment.js';
import { NameIndex } from '../server/name-index.js';
import { certificateName, issuerKey } from '../store/layout.js';
import { reconcile } from './adoption.js';
import { attempt, succeeded } from './attempt.js';
import type { ManagerCore, Meta } from './core.js';
import type { ManagerEvents, ObtainReason } from './events.js';
import { validateGeneration } from './issue.js';
import { findStored, loadStored } from './loader.js';
import {
  type ManagedCertificate,
  type ManagedCertificateOptions,
  type ManagerOptions,
  optionError,
  type ResolvedOptions,
  resolveCertificate,
  resolveOptions,
} from './options.js';
import { renewalTime, timeInWindow } from './policy.js';
import type { Generation } from './records.js';
import { Scheduler } from './scheduler.js';
import {
  type CertificateStatus,
  type CertState,
  newState,
  renewAllFailure,
  servedFacts,
  statusOf,
} from './state.js';
import { emitExpiryWarnings, expiryWarnings } from './warnings.js';

export type { CertificateStatus } from './state.js';

export class CertificateManager extends EventEmitter<ManagerEvents> {
  readonly #o: ResolvedOptions;
  readonly #states = new Map<string, CertState>();
  readonly #index = new NameIndex();
  readonly #attachments = new Set<ServerAttachment>();
  readonly #scheduler: Scheduler;
  readonly #abort = new AbortController();
  /** TLS-ALPN-01 challenge certificates, shared by issuers (writers) and attachments (readers). */
  readonly #alpn = new AlpnChallengeRegistry();
  readonly #cluster: ClusterSync;
  #phase: 'new' | 'running' | 'stopped' = 'new';
  /** The internals adoption.ts and deploy.ts work with. */
  readonly #core: ManagerCore;
  /** Server certificate ids in configuration order; rebuilt after manage/unmanage. */
  #serverIds: string[] | undefined;

  constructor(options: ManagerOptions) {
    super();
    this.#o = resolveOptions(options);
    this.#core = {
      options: this.#o,
      attachments: this.#attachments,
      emit: (event, ...args) => this.emit(event, ...args),
      running: () => this.#phase === 'running',
      issuersFor: (cert) => this.#issuersFor(cert),
      validate: (cert, generation, anchors, allowExpired) =>
        validateGeneration(cert, generation, this.#o.clock.now(), anchors, allowExpired),
      install: (state, generation, meta) => this.#install(state, generation, meta),
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
    this.#scheduler = new Scheduler(this.#o.clock, (id) => this.#tick(id), {
      concurrency: this.#o.concurrency,
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
          for (const state of this.#states.values()) void reconcile(this.#core, state);
        },
        // TLS-ALPN-01 validates exact names: a wildcard's base name only when it is listed too.
        answersTlsAlpn: ({ value }) => {
          const id = this.#source.usesTlsAlpn() ? this.#index.lookup(value) : undefined;
          return id !== undefined && this.#states.get(id)?.cert.names.includes(value) === true;
        },
      },
      { reconcileIntervalMs: this.#o.reconcileIntervalMs },
    );
    for (const cert of this.#o.certificates) this.#add(cert);
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
      state.retryAt = this.#o.clock.now();
      this.#reschedule(state);
    };
    for (const state of this.#states.values()) {
      if (state.inflight) void state.inflight.then(() => retry(state));
      else retry(state);
    }
  }

  /** Loads stored certificates (served at once), then keeps them renewed. Resolves after loading. */
  async start(): Promise<void> {
    this.#assertNotStopped();
    if (this.#phase === 'running') return;
    this.#phase = 'running';
    await Promise.all([...this.#states.values()].map((state) => this.#load(state)));
    await this.#cluster.start();
    this.#scheduler.start();
  }

  /** Resolves once every (or each given) certificate has something to serve. */
  async ready(ids?: string[]): Promise<void> {
    const states = (ids ?? [...this.#states.keys()]).map((id) => this.#state(id));
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => reject(new CertkeeperError('MANAGER_STOPPED', 'manager stopped'));
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
    stopped.catch(() => {});
    // Renewal timers are unref'd (background work must not keep a process alive), so a bare
    // `await manager.ready()` in a script could see the event loop run empty before the first
    // certificate is obtained, and Node exit with code 13. Waiting is foreground work.
    try {
      await foreground(Promise.race([Promise.all(states.map((s) => s.ready.promise)), stopped]));
    } finally {
      // One listener per call would pile up on the manager's long-lived signal.
      if (onAbort) this.#abort.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Stops the loop and any attempt under way. Servers keep serving what they have. Idempotent. */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    this.#scheduler.stop();
    this.#abort.abort();
    await this.#cluster.stop();
    await Promise.allSettled([...this.#states.values()].map((s) => s.inflight));
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
    this.#serverIds = undefined;
    this.#index.remove(id);
    this.#scheduler.delete(id);
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
    for (const state of this.#states.values()) {
      if (state.cert.purpose !== 'server') continue;
      if (state.current) attachment.apply(state.cert.id, state.current);
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
  }

  /**
   * Renews one certificate now, whatever its schedule. Resolves once the new certificate is
   * served; rejects with the attempt's typed error otherwise (the previous certificate is still
   * served and the retry is scheduled as after any failure).
   */
  async renewNow(id: string): Promise<void> {
    this.#assertNotStopped();
    const failure = await foreground(this.#obtain(this.#state(id), 'forced'));
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
        const failure = await this.#obtain(state, 'forced');
        if (failure) failed.set(state.cert.id, failure);
      }
    };
    const total = queue.length;
    await foreground(Promise.all(Array.from({ length: Math.min(this.#o.concurrency, total) }, worker)));
    if (failed.size > 0) throw renewAllFailure(failed, total);
  }

  /** Revokes the served certificate of `id` (where the issuer supports it) and replaces it. */
  async revoke(id: string, reason: RevocationReason = 'unspecified'): Promise<void> {
    const state = this.#state(id);
    const current = state.current ?? (await this.#materialize(state));
    if (!current) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate is served for "${id}"`);
    const issuer = this.#o.issuers.find((i) => i.id === current.issuer);
    if (!issuer?.revoke)
      throw new CertkeeperError('NOT_SUPPORTED', `issuer ${current.issuer} does not support revocation`);
    await issuer.revoke(
      { chainPem: current.chainPem, key: current.key },
      reason,
      this.#context(this.#abort.signal),
    );
    this.emit('revoked', { id, serial: current.info.serialNumber, reason });
    // Until a replacement is served, the revoked certificate still is: the caller must know.
    const failure = await this.#obtain(state, 'forced');
    if (failure) throw failure;
  }

  /** The union of the issuers' trust anchors (PEM), for clients of the managed servers. */
  async trustAnchors(): Promise<string[]> {
    const lists = await Promise.all(
      this.#o.issuers.map((i) => i.trustAnchors?.(this.#context(this.#abort.signal)) ?? []),
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
    return this.#index.lookup(servername);
  }

  status(): CertificateStatus[] {
    const now = this.#o.clock.now();
    return [...this.#states.values()].map((s) =>
      statusOf(s, now, this.#scheduler.dueAt(s.cert.id) ?? s.retryAt ?? s.renewAt),
    );
  }

  /** This replica's id among replicas sharing the store. */
  get replicaId(): string {
    return this.#o.replicaId;
  }

  // ---- internals -------------------------------------------------------------------------

  readonly #source: CertificateSource = {
    lookup: (servername) => this.#index.lookup(servername),
    current: (id) => this.#states.get(id)?.current,
    load: (id) => {
      const state = this.#states.get(id);
      return state ? this.#materialize(state) : Promise.resolve(undefined);
    },
    serverIds: () => {
      this.#serverIds ??= [...this.#states.values()]
        .filter((s) => s.cert.purpose === 'server')
        .map((s) => s.cert.id);
      return this.#serverIds;
    },
    isServer: (id) => this.#states.get(id)?.cert.purpose === 'server',
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
    this.#serverIds = undefined;
    if (cert.purpose === 'server') this.#index.add(cert.id, cert.names);
    return state;
  }

  #state(id: string): CertState {
    const state = this.#states.get(id);
    if (!state) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no managed certificate with id "${id}"`);
    return state;
  }

  #assertNotStopped(): void {
    if (this.#phase === 'stopped')
      throw new CertkeeperError('MANAGER_STOPPED', 'the manager has been stopped');
  }

  #context(signal: AbortSignal): IssuerContext {
    return {
      store: this.#o.store,
      clock: this.#o.clock,
      logger: this.#o.logger,
      signal,
      alpnChallenges: this.#alpn,
      ...(this.#o.store.watch ? { replicaId: this.#o.replicaId } : {}),
    };
  }

  #issuersFor(cert: ManagedCertificate): Issuer[] {
    return this.#o.issuers.filter((i) => !i.supportsPurpose || i.supportsPurpose(cert.purpose));
  }

  #reportStored(state: CertState, error: CertkeeperError): void {
    this.#o.logger.warn('stored certificate is unusable; it will be re-issued', {
      id: state.cert.id,
      code: error.code,
      error: error.message,
    });
    this.emit('storedInvalid', { id: state.cert.id, error });
  }

  // ---- start-up and loading ----------------------------------------------------------------

  /** Reads the stored pointer; loads the certificate now, or on its first handshake when the set is large. */
  async #load(state: CertState): Promise<void> {
    const { cert } = state;
    const issuers = this.#issuersFor(cert).map((i) => i.id);
    let stored: Awaited<ReturnType<typeof findStored>>;
    try {
      stored = await findStored(this.#o.store, issuers, cert.primary, (e) => this.#reportStored(state, e));
    } catch (error) {
      // The store is unreachable: nothing is known yet. The obtain attempt this schedules needs
      // the store too (its lock), and re-reads it under the lock before ordering anything.
      this.#o.logger.warn('store unreachable while loading a certificate', {
        id: cert.id,
        error: describeCause(error),
      });
      stored = null;
    }
    if (state.removed || !stored) {
      this.#reschedule(state);
      return;
    }
    state.stored = stored;
    this.#planRenewal(state, stored.meta.fingerprint256, {
      notBefore: new Date(stored.meta.notBefore),
      notAfter: new Date(stored.meta.notAfter),
    });
    const eager = cert.purpose === 'client' || this.#states.size <= this.#o.eagerLoadLimit;
    if (eager) await this.#materialize(state);
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

  /** Reads and validates the stored generation into memory (once; concurrent callers share it). */
  #materialize(state: CertState): Promise<Generation | undefined> {
    if (state.current) return Promise.resolve(state.current);
    const stored = state.stored;
    if (!stored) return Promise.resolve(undefined);
    state.loading ??= (async () => {
      let loaded: Awaited<ReturnType<typeof loadStored>>;
      try {
        loaded = await loadStored(
          this.#o.store,
          stored,
          state.cert.primary,
          (generation) => validateGeneration(state.cert, generation, this.#o.clock.now(), undefined, true),
          (error) => this.#reportStored(state, error),
        );
      } catch (error) {
        // Unreachable, not damaged: keep the pointer and read again on the next handshake or
        // attempt; re-issuing here would order a certificate the store still holds.
        state.loading = undefined;
        this.#o.logger.warn('store unreachable while loading a certificate; will read again', {
          id: state.cert.id,
          error: describeCause(error),
        });
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
      this.#install(state, loaded.generation, loaded.meta);
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
  #install(state: CertState, generation: Generation, meta: Meta): Generation | undefined {
    const replaced = state.current;
    state.current = generation;
    state.currentMeta = meta;
    state.stored = { issuer: generation.issuer, meta: { ...meta, previous: null } };
    this.#planRenewal(state, generation.info.fingerprint256, generation.info);
    if (state.cert.purpose === 'server') {
      for (const attachment of this.#attachments) attachment.apply(state.cert.id, generation, replaced);
    }
    state.ready.resolve();
    void this.#refreshWindow(state, generation);
    return replaced;
  }

  /** Asks the issuer for a suggested renewal window (ACME ARI) and moves the renewal into it. */
  async #refreshWindow(state: CertState, generation: Generation): Promise<void> {
    const issuer = this.#o.issuers.find((i) => i.id === generation.issuer);
    if (!issuer?.renewalWindow) return;
    try {
      const window = await issuer.renewalWindow(
        { ...generation.info, chainPem: generation.chainPem },
        this.#context(this.#abort.signal),
      );
      if (!window || state.current !== generation || window.end <= window.start) return;
      state.renewAt = timeInWindow(window, state.sample);
      state.windowRefreshAt = window.refreshAt?.getTime();
      this.#reschedule(state);
    } catch (error) {
      if (state.current !== generation) return;
      // The lifetime rule stays in force; ask again later.
      state.windowRefreshAt = this.#o.clock.now() + 3_600_000;
      this.#reschedule(state);
      this.#o.logger.debug('renewal window unavailable', { id: state.cert.id, error: describeCause(error) });
    }
  }

  // ---- replicas (adoption.ts) -----------------------------------------------------------

  #onPointer(key: string): void {
    // certificates/<issuer>/<name>/current.json
    const [, issuerPart, namePart] = key.split('/');
    for (const state of this.#states.values()) {
      if (certificateName(state.cert.primary) !== namePart) continue;
      if (this.#issuersFor(state.cert).some((i) => issuerKey(i.id) === issuerPart))
        void reconcile(this.#core, state);
    }
  }

  // ---- the loop ----------------------------------------------------------------------------

  #reschedule(state: CertState): void {
    if (state.removed || this.#phase === 'stopped') return;
    const now = this.#o.clock.now();
    const known = servedFacts(state) !== undefined;
    const due = state.retryAt ?? (known && state.renewAt !== undefined ? state.renewAt : now);
    let next = Math.min(due, state.windowRefreshAt ?? Number.POSITIVE_INFINITY);
    for (const warning of expiryWarnings(state, this.#o.policy))
      if (!state.warned.has(warning.threshold)) next = Math.min(next, warning.at);
    this.#scheduler.set(state.cert.id, next);
  }

  async #tick(id: string): Promise<void> {
    const state = this.#states.get(id);
    if (!state) return;
    const now = this.#o.clock.now();
    emitExpiryWarnings(this.#core, state, now);
    if (state.current && state.windowRefreshAt !== undefined && state.windowRefreshAt <= now) {
      state.windowRefreshAt = undefined;
      void this.#refreshWindow(state, state.current);
    }
    const facts = servedFacts(state);
    const due = state.retryAt ?? (facts && state.renewAt !== undefined ? state.renewAt : now);
    if (due > now) {
      this.#reschedule(state);
      return;
    }
    const reason: ObtainReason = !facts
      ? 'missing'
      : state.retryAt !== undefined
        ? 'retry'
        : facts.notAfter.getTime() <= now
          ? 'expired'
          : 'renewal';
    await this.#obtain(state, reason);
  }

  // ---- obtaining -------------------------------------------------------------------------

  /** Resolves with the attempt's failure, or undefined once a new certificate is served. */
  #obtain(state: CertState, reason: ObtainReason): Promise<CertkeeperError | undefined> {
    if (state.inflight) {
      if (reason !== 'forced') return state.inflight;
      // A forced renewal must produce a new certificate, not ride on an attempt that began
      // earlier: queue one more attempt after it (several callers share that one).
      state.queuedForced ??= state.inflight.then(() => {
        state.queuedForced = undefined;
        return this.#obtain(state, 'forced');
      });
      return state.queuedForced;
    }
    state.inflight = attempt(this.#core, state, reason).finally(() => {
      state.inflight = undefined;
      this.#reschedule(state);
    });
    return state.inflight;
  }
}

/** Keeps the process alive until `work` settles (the caller is waiting for it). */
async function foreground<T>(work: Promise<T>): Promise<T> {
  const hold = setInterval(() => {}, 2 ** 30);
  try {
    return await work;
  } finally {
    clearInterval(hold);
  }
}

/** Creates a certificate manager; call `start()` to load and begin renewing. */
export function createCertificateManager(options: ManagerOptions): CertificateManager {
  return new CertificateManager(options);
}
