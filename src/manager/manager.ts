/**
 * The certificate manager: keeps a set of certificates valid and live on running servers.
 *
 * Where things happen:
 *   start-up (`#load`)          store → validate → serve at once, even with the issuer down
 *   the loop (`#tick`)          one Scheduler wakes for the next due certificate or warning
 *   obtaining (`#obtain`)       store lock → re-check → issuers in order → deploy
 *   the deploy path (`#deploy`) validate → store atomically → build context → swap → live verify → emit
 *                               (any failure: keep or restore the previous certificate, retry later)
 */
import type tls from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import { AlpnChallengeRegistry } from '../challenges/alpn-registry.js';
import { createCsr } from '../crypto/csr.js';
import { parseCertificates } from '../crypto/inspect.js';
import { PrivateKey } from '../crypto/keys.js';
import { validateBundle } from '../crypto/validate.js';
import { CertkeeperError, describeCause, isCertkeeperError } from '../errors.js';
import type { Issuer, IssuerContext, RevocationReason } from '../issuers/issuer.js';
import { type AttachOptions, type CertificateSource, ServerAttachment } from '../server/attachment.js';
import { NameIndex } from '../server/name-index.js';
import { certificateName } from '../store/layout.js';
import { withLock } from '../store/with-lock.js';
import type { ManagerEvents, ObtainReason } from './events.js';
import {
  type ManagedCertificate,
  type ManagedCertificateOptions,
  type ManagerOptions,
  optionError,
  type ResolvedOptions,
  resolveCertificate,
  resolveOptions,
} from './options.js';
import { renewalTime, retryDelay, timeInWindow, warningTimes } from './policy.js';
import {
  commitGeneration,
  type Generation,
  type GenerationMeta,
  loadGeneration,
  metaOf,
  readPointer,
  revertPointer,
} from './records.js';
import { Scheduler } from './scheduler.js';

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
  lastError: { code: string; message: string } | null;
}

interface CertState {
  cert: ManagedCertificate;
  current?: Generation;
  currentMeta?: Omit<GenerationMeta, 'previous'>;
  /** Drawn once per generation: jitter and position in an ARI window. */
  sample: number;
  renewAt?: number;
  retryAt?: number;
  /** When to ask the issuer for its renewal window again (ARI Retry-After). */
  windowRefreshAt?: number;
  failures: number;
  lastError?: CertkeeperError;
  warned: Set<number>;
  inflight?: Promise<void>;
  queuedForced?: Promise<void>;
  ready: { promise: Promise<void>; resolve: () => void };
  removed?: boolean;
}

function deferred(): CertState['ready'] {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function asError(error: unknown): CertkeeperError {
  if (isCertkeeperError(error)) return error;
  return new CertkeeperError('ISSUER_FAILED', describeCause(error), { cause: error });
}

export class CertificateManager extends EventEmitter<ManagerEvents> {
  readonly #o: ResolvedOptions;
  readonly #states = new Map<string, CertState>();
  readonly #index = new NameIndex();
  readonly #attachments = new Set<ServerAttachment>();
  readonly #scheduler: Scheduler;
  readonly #abort = new AbortController();
  /** TLS-ALPN-01 challenge certificates, shared by issuers (writers) and attachments (readers). */
  readonly #alpn = new AlpnChallengeRegistry();
  #phase: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: ManagerOptions) {
    super();
    this.#o = resolveOptions(options);
    this.#scheduler = new Scheduler(this.#o.clock, (id) => this.#tick(id), {
      concurrency: this.#o.concurrency,
    });
    for (const cert of this.#o.certificates) this.#add(cert);
  }

  /** Loads stored certificates (served at once), then keeps them renewed. Resolves after loading. */
  async start(): Promise<void> {
    this.#assertNotStopped();
    if (this.#phase === 'running') return;
    this.#phase = 'running';
    await Promise.all([...this.#states.values()].map((state) => this.#load(state)));
    this.#scheduler.start();
  }

  /** Resolves once every (or each given) certificate has something to serve. */
  async ready(ids?: string[]): Promise<void> {
    const states = (ids ?? [...this.#states.keys()]).map((id) => this.#state(id));
    const stopped = new Promise<never>((_, reject) =>
      this.#abort.signal.addEventListener(
        'abort',
        () => reject(new CertkeeperError('MANAGER_STOPPED', 'manager stopped')),
        {
          once: true,
        },
      ),
    );
    stopped.catch(() => {});
    await Promise.race([Promise.all(states.map((s) => s.ready.promise)), stopped]);
  }

  /** Stops the loop and any attempt under way. Servers keep serving what they have. Idempotent. */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    this.#scheduler.stop();
    this.#abort.abort();
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
      if (state.current && state.cert.purpose === 'server') attachment.apply(state.cert.id, state.current);
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

  /** Renews one certificate now, whatever its schedule. */
  renewNow(id: string): Promise<void> {
    this.#assertNotStopped();
    return this.#obtain(this.#state(id), 'forced');
  }

  /** Renews every certificate now: the "intermediate compromised, rotate everything" drill. */
  async renewAll(): Promise<void> {
    this.#assertNotStopped();
    const queue = [...this.#states.values()];
    const worker = async () => {
      for (let state = queue.shift(); state; state = queue.shift()) await this.#obtain(state, 'forced');
    };
    await Promise.all(Array.from({ length: Math.min(this.#o.concurrency, queue.length) }, worker));
  }

  /** Revokes the served certificate of `id` (where the issuer supports it) and replaces it. */
  async revoke(id: string, reason: RevocationReason = 'unspecified'): Promise<void> {
    const state = this.#state(id);
    const current = state.current;
    if (!current) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate is served for "${id}"`);
    const issuer = this.#o.issuers.find((i) => i.id === current.issuer);
    if (!issuer?.revoke) {
      throw new CertkeeperError('NOT_SUPPORTED', `issuer ${current.issuer} does not support revocation`);
    }
    await issuer.revoke(
      { chainPem: current.chainPem, key: current.key },
      reason,
      this.#context(this.#abort.signal),
    );
    this.emit('revoked', { id, serial: current.info.serialNumber, reason });
    await this.#obtain(state, 'forced');
  }

  /** The union of the issuers' trust anchors (PEM), for clients of the managed servers. */
  async trustAnchors(): Promise<string[]> {
    const lists = await Promise.all(
      this.#o.issuers.map((i) => i.trustAnchors?.(this.#context(this.#abort.signal)) ?? []),
    );
    return [...new Set(lists.flat())];
  }

  /** The certificate served for `id` (no key), or null. */
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

  /** Which managed certificate answers a server name (exact, then wildcard). */
  lookup(servername: string): string | undefined {
    return this.#index.lookup(servername);
  }

  status(): CertificateStatus[] {
    const now = this.#o.clock.now();
    return [...this.#states.values()].map((s) => {
      const info = s.current?.info;
      const due = this.#scheduler.dueAt(s.cert.id) ?? s.retryAt ?? s.renewAt;
      return {
        id: s.cert.id,
        names: [...s.cert.names],
        purpose: s.cert.purpose,
        state: !info ? 'missing' : info.notAfter.getTime() <= now ? 'expired' : 'valid',
        renewing: s.inflight !== undefined,
        issuer: s.current?.issuer ?? null,
        serial: info?.serialNumber ?? null,
        fingerprint256: info?.fingerprint256 ?? null,
        notBefore: info?.notBefore ?? null,
        notAfter: info?.notAfter ?? null,
        nextRenewalAt: due === undefined ? null : new Date(due),
        failures: s.failures,
        lastError: s.lastError ? { code: s.lastError.code, message: s.lastError.message } : null,
      };
    });
  }

  // ---- internals -------------------------------------------------------------------------

  readonly #source: CertificateSource = {
    lookup: (servername) => this.#index.lookup(servername),
    current: (id) => this.#states.get(id)?.current,
    serverIds: () =>
      [...this.#states.values()].filter((s) => s.cert.purpose === 'server').map((s) => s.cert.id),
    logger: this.#loggerProxy(),
    alpnChallenges: this.#alpn,
    usesTlsAlpn: () => this.#o.issuers.some((i) => i.challengeTypes?.includes('tls-alpn-01')),
  };

  #loggerProxy() {
    return {
      debug: (m: string, f?: Record<string, unknown>) => this.#o?.logger.debug(m, f),
      info: (m: string, f?: Record<string, unknown>) => this.#o?.logger.info(m, f),
      warn: (m: string, f?: Record<string, unknown>) => this.#o?.logger.warn(m, f),
      error: (m: string, f?: Record<string, unknown>) => this.#o?.logger.error(m, f),
    };
  }

  #add(cert: ManagedCertificate): CertState {
    const state: CertState = {
      cert,
      sample: Math.random(),
      failures: 0,
      warned: new Set(),
      ready: deferred(),
    };
    this.#states.set(cert.id, state);
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
    };
  }

  #issuersFor(cert: ManagedCertificate): Issuer[] {
    return this.#o.issuers.filter((i) => !i.supportsPurpose || i.supportsPurpose(cert.purpose));
  }

  /** Validates a bundle for `cert`. Anchors are checked when given (fresh issuance), not at load. */
  #validate(
    cert: ManagedCertificate,
    generation: Pick<Generation, 'key' | 'chainPem'>,
    anchors?: string[],
    allowExpired = false,
  ) {
    const verdict = validateBundle({
      key: generation.key,
      chain: generation.chainPem,
      names: cert.names,
      purpose: cert.purpose,
      trustAnchors: anchors,
      now: new Date(this.#o.clock.now()),
    });
    if (verdict.ok) return null;
    const problems = allowExpired ? verdict.problems.filter((p) => p.code !== 'EXPIRED') : verdict.problems;
    return problems[0] ?? null;
  }

  // ---- start-up ------------------------------------------------------------------------

  async #load(state: CertState): Promise<void> {
    const { cert } = state;
    let best: { generation: Generation; meta: Omit<GenerationMeta, 'previous'> } | undefined;
    for (const issuer of this.#issuersFor(cert)) {
      for (const candidate of await this.#candidates(state, issuer.id)) {
        if (!best || candidate.generation.info.notAfter > best.generation.info.notAfter) best = candidate;
      }
    }
    if (state.removed) return;
    if (best) {
      this.#install(state, best.generation, best.meta);
      this.emit('loaded', {
        id: cert.id,
        serial: best.generation.info.serialNumber,
        notAfter: best.generation.info.notAfter,
        issuer: best.generation.issuer,
      });
      this.#o.logger.info('certificate loaded from store', {
        id: cert.id,
        serial: best.generation.info.serialNumber,
      });
    }
    this.#reschedule(state);
  }

  /** Servable generations stored under one issuer: current, else previous. Damage is reported. */
  async #candidates(state: CertState, issuer: string) {
    const { cert } = state;
    const found: { generation: Generation; meta: Omit<GenerationMeta, 'previous'> }[] = [];
    let pointer: GenerationMeta | null;
    try {
      pointer = await readPointer(this.#o.store, issuer, cert.primary);
    } catch (error) {
      this.#reportStored(state, asError(error));
      return found;
    }
    for (const meta of [pointer, pointer?.previous].filter((m): m is GenerationMeta => !!m)) {
      try {
        const generation = await loadGeneration(this.#o.store, issuer, cert.primary, meta);
        const problem = this.#validate(cert, generation, undefined, true);
        if (problem) throw problem;
        found.push({ generation, meta });
        break;
      } catch (error) {
        this.#reportStored(state, asError(error));
      }
    }
    return found;
  }

  #reportStored(state: CertState, error: CertkeeperError): void {
    this.#o.logger.warn('stored certificate is unusable; it will be re-issued', {
      id: state.cert.id,
      code: error.code,
      error: error.message,
    });
    this.emit('storedInvalid', { id: state.cert.id, error });
  }

  /** Makes `generation` current in memory and on every attached server. */
  #install(
    state: CertState,
    generation: Generation,
    meta: Omit<GenerationMeta, 'previous'>,
  ): Generation | undefined {
    const replaced = state.current;
    state.current = generation;
    state.currentMeta = meta;
    state.sample = Math.random();
    state.warned = new Set();
    state.renewAt = renewalTime(generation.info, this.#o.policy, state.sample);
    state.windowRefreshAt = undefined;
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

  // ---- the loop ----------------------------------------------------------------------------

  #reschedule(state: CertState): void {
    if (state.removed || this.#phase === 'stopped') return;
    const now = this.#o.clock.now();
    const due = state.retryAt ?? (state.current ? state.renewAt! : now);
    let next = Math.min(due, state.windowRefreshAt ?? Number.POSITIVE_INFINITY);
    if (state.current) {
      for (const warning of this.#warnings(state))
        if (!state.warned.has(warning.threshold)) next = Math.min(next, warning.at);
    }
    this.#scheduler.set(state.cert.id, next);
  }

  #warnings(state: CertState) {
    const info = state.current!.info;
    return [...warningTimes(info, this.#o.policy), { threshold: 0, at: info.notAfter.getTime() }];
  }

  async #tick(id: string): Promise<void> {
    const state = this.#states.get(id);
    if (!state) return;
    const now = this.#o.clock.now();
    if (state.current) this.#emitWarnings(state, now);
    if (state.current && state.windowRefreshAt !== undefined && state.windowRefreshAt <= now) {
      state.windowRefreshAt = undefined;
      void this.#refreshWindow(state, state.current);
    }
    const due = state.retryAt ?? (state.current ? state.renewAt! : now);
    if (due <= now) {
      const expired = state.current && state.current.info.notAfter.getTime() <= now;
      const reason: ObtainReason = !state.current
        ? 'missing'
        : state.retryAt !== undefined
          ? 'retry'
          : expired
            ? 'expired'
            : 'renewal';
      await this.#obtain(state, reason);
    } else {
      this.#reschedule(state);
    }
  }

  /** Emits the most severe newly crossed threshold once, marking milder ones as seen. */
  #emitWarnings(state: CertState, now: number): void {
    const crossed = this.#warnings(state).filter((w) => w.at <= now && !state.warned.has(w.threshold));
    if (crossed.length === 0) return;
    for (const w of crossed) state.warned.add(w.threshold);
    const worst = crossed.reduce((a, b) => (a.threshold < b.threshold ? a : b));
    const info = state.current!.info;
    const remainingMs = info.notAfter.getTime() - now;
    this.#o.logger.warn('certificate is expiring', {
      id: state.cert.id,
      serial: info.serialNumber,
      remainingMs,
    });
    this.emit('expiring', {
      id: state.cert.id,
      serial: info.serialNumber,
      notAfter: info.notAfter,
      remainingMs,
      threshold: worst.threshold,
    });
  }

  // ---- obtaining -------------------------------------------------------------------------

  #obtain(state: CertState, reason: ObtainReason): Promise<void> {
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
    const run = async () => {
      const { cert } = state;
      const attempt = state.failures + 1;
      const started = this.#o.clock.now();
      this.emit('obtaining', { id: cert.id, names: [...cert.names], reason, attempt });
      try {
        const timeout = AbortSignal.timeout(this.#o.issueTimeoutMs);
        const signal = AbortSignal.any([this.#abort.signal, timeout]);
        await withLock(
          this.#o.store,
          `issue/${certificateName(cert.primary)}`,
          async (_lease, lockSignal) => {
            const attemptSignal = AbortSignal.any([signal, lockSignal]);
            if (await this.#adopt(state, reason === 'forced' ? started : undefined)) return;
            const generation = await this.#issue(state, attemptSignal);
            await this.#deploy(state, generation, started);
          },
          { ttlMs: this.#o.lockTtlMs, signal },
        );
        this.#succeeded(state);
      } catch (error) {
        if (this.#phase === 'stopped') return;
        const failure = asError(error);
        state.failures++;
        state.lastError = failure;
        const now = this.#o.clock.now();
        // A CA's Retry-After (rate limits, maintenance) is a floor: never come back sooner.
        const retryAfter =
          typeof failure.details.retryAfterMs === 'number' ? failure.details.retryAfterMs : 0;
        const backoff = retryDelay(
          state.failures,
          now,
          state.current?.info.notAfter.getTime(),
          this.#o.policy,
        );
        state.retryAt = now + Math.max(backoff, retryAfter);
        this.#o.logger.warn('obtaining a certificate failed', {
          id: cert.id,
          code: failure.code,
          error: failure.message,
          retryAt: new Date(state.retryAt).toISOString(),
        });
        this.emit('renewalFailed', {
          id: cert.id,
          error: failure,
          attempt,
          retryAt: new Date(state.retryAt),
          servingSerial: state.current?.info.serialNumber ?? null,
        });
      }
    };
    state.inflight = run().finally(() => {
      state.inflight = undefined;
      this.#reschedule(state);
    });
    return state.inflight;
  }

  #succeeded(state: CertState): void {
    state.failures = 0;
    state.lastError = undefined;
    state.retryAt = undefined;
  }

  /**
   * The re-check after taking the lock: another replica may have stored a newer certificate
   * while we waited. Adopt it instead of ordering again when it is valid and either not yet due
   * or (for a forced renewal) stored after the request was made.
   */
  async #adopt(state: CertState, storedAfter: number | undefined): Promise<boolean> {
    const mine = state.current?.info.fingerprint256;
    for (const issuer of this.#issuersFor(state.cert)) {
      let pointer: GenerationMeta | null;
      try {
        pointer = await readPointer(this.#o.store, issuer.id, state.cert.primary);
      } catch {
        continue;
      }
      if (!pointer || pointer.fingerprint256 === mine) continue;
      if (storedAfter !== undefined && Date.parse(pointer.storedAt) < storedAfter) continue;
      try {
        const generation = await loadGeneration(this.#o.store, issuer.id, state.cert.primary, pointer);
        if (this.#validate(state.cert, generation)) continue;
        if (state.current && generation.info.notAfter <= state.current.info.notAfter) continue;
        if (
          storedAfter === undefined &&
          renewalTime(generation.info, this.#o.policy, state.sample) <= this.#o.clock.now()
        )
          continue;
        this.#install(state, generation, pointer);
        this.emit('adopted', {
          id: state.cert.id,
          serial: generation.info.serialNumber,
          notAfter: generation.info.notAfter,
        });
        return true;
      } catch {
        // A damaged entry is healed by issuing, below.
      }
    }
    return false;
  }

  /** Asks each issuer in turn; the first valid certificate wins. */
  async #issue(state: CertState, signal: AbortSignal): Promise<Generation> {
    const { cert } = state;
    const key = await PrivateKey.generate(cert.keyType);
    const csr = await createCsr({ key, names: cert.names });
    let lastError: CertkeeperError | undefined;
    for (const issuer of this.#issuersFor(cert)) {
      signal.throwIfAborted();
      const context = this.#context(signal);
      try {
        const current = state.current;
        const request = {
          id: cert.id,
          names: [...cert.names],
          purpose: cert.purpose,
          keyType: cert.keyType,
          key,
          csr,
          current: current ? { chainPem: current.chainPem, key: current.key, info: current.info } : undefined,
        };
        const issued =
          current && issuer.renew && current.issuer === issuer.id
            ? await issuer.renew({ ...request, current: request.current! }, context)
            : await issuer.issue(request, context);
        const chain = parseCertificates(issued.chainPem, `certificate from ${issuer.id}`);
        const generation: Generation = {
          issuer: issuer.id,
          chainPem: chain.map((c) => c.pem).join(''),
          key: issued.key ?? key,
          info: chain[0]!.info,
          chain: chain.map((c) => c.info),
          storedAt: this.#o.clock.now(),
        };
        const listed = issuer.trustAnchors ? await issuer.trustAnchors(context) : [];
        const anchors = listed.length > 0 ? listed : undefined;
        const problem = this.#validate(cert, generation, anchors);
        if (problem) {
          this.emit('rolledBack', {
            id: cert.id,
            reason: problem,
            rejectedSerial: generation.info.serialNumber,
            servingSerial: current?.info.serialNumber ?? null,
          });
          throw problem;
        }
        return generation;
      } catch (error) {
        lastError = asError(error);
        this.#o.logger.warn('issuer failed', {
          id: cert.id,
          issuer: issuer.id,
          code: lastError.code,
          error: lastError.message,
        });
      }
    }
    throw lastError ?? new CertkeeperError('ISSUER_FAILED', `no issuer can issue "${cert.id}"`);
  }

  /** Store → swap → live verify → emit; on a failed live check, restore the previous certificate. */
  async #deploy(state: CertState, generation: Generation, started: number): Promise<void> {
    const { cert } = state;
    const previous = state.current;
    const previousMeta = state.currentMeta;
    const now = this.#o.clock.now();
    const meta = metaOf(generation, cert, now);
    // `previous` must live under the same issuer directory to be found again for rollback.
    const sameIssuer = previousMeta && previousMeta.issuer === generation.issuer ? previousMeta : null;
    await commitGeneration(this.#o.store, cert.primary, generation, meta, sameIssuer);
    this.#install(state, generation, meta);

    const attachments =
      cert.purpose === 'server' ? [...this.#attachments].filter((a) => a.serves(cert.id)) : [];
    const results = await Promise.allSettled(attachments.map((a) => a.verify(cert.id, generation)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const error = asError(failed.reason);
      this.emit('liveVerifyFailed', { id: cert.id, error, expected: generation.info.fingerprint256 });
      if (previous && previousMeta) {
        this.#install(state, previous, previousMeta);
        if (previous.issuer === generation.issuer)
          await revertPointer(this.#o.store, previous.issuer, cert.primary, previousMeta);
      }
      this.emit('rolledBack', {
        id: cert.id,
        reason: error,
        rejectedSerial: generation.info.serialNumber,
        servingSerial: state.current?.info.serialNumber ?? null,
      });
      throw error;
    }
    // Status must already read "healthy" when listeners of the events below look at it.
    this.#succeeded(state);
    const verified = results.filter((r) => r.status === 'fulfilled' && r.value !== null).length;
    const serial = generation.info.serialNumber;
    this.emit('swapped', {
      id: cert.id,
      serial,
      previousSerial: previous?.info.serialNumber ?? null,
      servers: attachments.length,
      verified,
    });
    const durationMs = this.#o.clock.now() - started;
    if (previous) {
      this.emit('renewed', {
        id: cert.id,
        serial,
        previousSerial: previous.info.serialNumber,
        notAfter: generation.info.notAfter,
        issuer: generation.issuer,
        durationMs,
      });
    } else {
      this.emit('obtained', {
        id: cert.id,
        serial,
        notAfter: generation.info.notAfter,
        issuer: generation.issuer,
        durationMs,
      });
    }
    this.#o.logger.info('certificate deployed', {
      id: cert.id,
      serial,
      notAfter: generation.info.notAfter.toISOString(),
    });
  }
}

/** Creates a certificate manager; call `start()` to load and begin renewing. */
export function createCertificateManager(options: ManagerOptions): CertificateManager {
  return new CertificateManager(options);
}
