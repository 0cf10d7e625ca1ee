/**
 * One managed certificate: the only object that writes its state. A certificate is either
 * *materialized* (`current`: chain and key in memory, validated) or only *known* (`stored`: the
 * pointer read from the store). With thousands of certificates only the pointers are read at
 * start-up; a certificate is materialized on its first handshake, or when it is renewed. That
 * keeps start-up and memory proportional to what is actually served.
 *
 * Its phase: `loading` (the store not read yet, or nothing served and no attempt finished),
 * `serving` (something is served; no attempt running), `renewing` (an attempt runs: renewal.ts),
 * `failed` (nothing served and the last attempt failed), `stopped` (no longer managed, or the
 * manager stopped). What renewal.ts, adoption.ts and revoke.ts learn they tell it through its
 * methods; the scheduler wakes it through `tick`.
 */
import type { CertkeeperError } from '../errors.js';
import { claimAtStart } from './claims.js';
import type { ObtainReason } from './events.js';
import { findStored, type Loaded, loadStored, lookupFor, reportUnreadable } from './loader.js';
import type { CertificateConfig } from './options.js';
import type { Generation, GenerationMeta } from './records.js';
import { renew } from './renewal.js';
import { askWindow, RenewalPlan } from './renewal-plan.js';
import { healStored } from './repair.js';
import type { Runtime } from './runtime.js';
import { type CertificateStatus, type StoredPointer, servedFacts, statusOf } from './status.js';

export type Phase = 'loading' | 'serving' | 'renewing' | 'failed' | 'stopped';
export type Meta = Omit<GenerationMeta, 'previous'>;

export class ManagedCertificate {
  readonly config: CertificateConfig;
  readonly #rt: Runtime;
  #phase: Phase = 'loading';
  #removed = false;
  #current?: Generation;
  #currentMeta?: Meta;
  #stored?: StoredPointer;
  /** A materialization under way (deduplicated). */
  #loading?: Promise<Generation | undefined>;
  /** When it is next due, and what its attempts so far came to. */
  readonly #plan: RenewalPlan;
  #inflight?: Promise<CertkeeperError | undefined>;
  #queuedForced?: Promise<CertkeeperError | undefined>;
  #ready = false;
  #resolveReady!: () => void;
  /** Resolved once something is served: loaded, adopted, or obtained, verified and announced. */
  readonly readyPromise = new Promise<void>((resolve) => {
    this.#resolveReady = resolve;
  });
  /** Serials revoked (here, or as the stored pointer says): never served again, never a fallback. */
  readonly #revoked = new Set<string>();
  /** Fingerprint of a certificate whose deploy failed (still served where it was kept): not ready. */
  #unverified?: string;
  /** `factsKey` of another configuration found stored under this id at start-up, which this one replaces. */
  #replaces?: string;

  constructor(config: CertificateConfig, runtime: Runtime) {
    this.config = config;
    this.#rt = runtime;
    this.#plan = new RenewalPlan(runtime.options.policy);
  }

  get id(): string {
    return this.config.id;
  }
  get phase(): Phase {
    return this.#phase;
  }
  get current(): Generation | undefined {
    return this.#current;
  }
  get currentMeta(): Meta | undefined {
    return this.#currentMeta;
  }
  get stored(): StoredPointer | undefined {
    return this.#stored;
  }
  /** When it is next due and what its attempts came to, to read (renewal-plan.ts). */
  get plan(): Pick<RenewalPlan, 'sample' | 'failures' | 'lastError' | 'blocked' | 'lastIssuance'> {
    return this.#plan;
  }
  get isReady(): boolean {
    return this.#ready;
  }
  get renewing(): boolean {
    return this.#inflight !== undefined;
  }
  get removed(): boolean {
    return this.#removed;
  }
  get revoked(): ReadonlySet<string> {
    return this.#revoked;
  }
  get unverified(): string | undefined {
    return this.#unverified;
  }
  get replaces(): string | undefined {
    return this.#replaces;
  }

  // ---- loading ---------------------------------------------------------------------------

  /**
   * Reads the stored pointer; loads the certificate now (`eager`), or on its first handshake
   * when the set is large. A client certificate is always loaded now: no handshake asks for it.
   */
  async load(eager: boolean): Promise<void> {
    let stored: StoredPointer | null;
    try {
      stored = await findStored(lookupFor(this.#rt, this.config, this.#revoked));
    } catch (error) {
      // Unreachable or unreadable: nothing is known yet. The obtain attempt this schedules needs
      // the store too (its lock), and re-reads it under the lock before ordering anything.
      reportUnreadable(this.#rt.options.logger, this.id, error);
      stored = null;
    }
    if (this.removed || !stored) {
      this.schedule();
      return;
    }
    this.markRevoked(...(stored.meta.revoked ?? []));
    const claim = claimAtStart(this.config, stored.meta, this.#rt.options.logger);
    if (claim) this.#replaces = claim;
    this.#stored = stored;
    this.#plan.plan(stored.meta.fingerprint256, stored.meta);
    if (this.#replaces) this.#plan.renewAt(this.#rt.options.clock.now());
    if (eager || this.config.purpose === 'client') await this.materialize('eager', true);
    // Lazily loaded, or an eager load the store could not serve right now: the pointer is known,
    // the first handshake (or the retry below) loads the rest.
    if (!this.#current && this.#stored) this.markReady();
    const facts = servedFacts(this);
    if (facts) {
      const { serial, notAfter, issuer } = facts;
      this.#rt.emit('loaded', { id: this.id, serial, notAfter, issuer });
    }
    this.#settle();
    this.schedule();
  }

  /**
   * Reads and validates the stored generation into memory (once; concurrent callers share it).
   * What loading worked around is repaired in the store: awaited at start-up (`awaitRepair`),
   * in the background when a handshake or a call is waiting for the certificate.
   */
  materialize(mode: 'eager' | 'lazy' = 'eager', awaitRepair = false): Promise<Generation | undefined> {
    if (this.#current) return Promise.resolve(this.#current);
    const stored = this.#stored;
    if (!stored) return Promise.resolve(undefined);
    this.#loading ??= (async () => {
      const { options } = this.#rt;
      let loaded: Loaded | null;
      try {
        loaded = await loadStored(lookupFor(this.#rt, this.config, this.#revoked), stored);
      } catch (error) {
        // Unreachable or unreadable, not damaged: keep the pointer and read again on the next
        // handshake or attempt; re-issuing here would order a certificate the store still holds.
        this.#loading = undefined;
        reportUnreadable(this.#rt.options.logger, this.id, error);
        options.clock.setTimeout(() => {
          if (this.#rt.running() && !this.#current && !this.removed) void this.materialize();
        }, 2_000);
        return undefined;
      }
      this.#loading = undefined;
      if (this.#current) return this.#current;
      if (!loaded) {
        // Nothing servable: heal by obtaining a new certificate now.
        this.#stored = undefined;
        this.#plan.renewAt(undefined);
        this.#settle();
        this.schedule();
        return undefined;
      }
      this.install(loaded.generation, loaded.meta, mode === 'lazy' ? 'lazy' : 'targets');
      if (this.#replaces) {
        // Another configuration's certificate, valid for this one: served until replaced, at once.
        this.#plan.renewAt(options.clock.now());
        this.schedule();
      }
      // Written back once, so the next start does not work around the same damage again.
      if (loaded.heal) {
        const repair = healStored(options, this.config, stored, loaded, this.revoked);
        if (awaitRepair) await repair;
      }
      return loaded.generation;
    })();
    return this.#loading;
  }

  /**
   * Makes `generation` current: in memory and in the cache handshakes read, then on the targets
   * serving it: all of them (`targets`: loaded, adopted), none (`deploy`: renewal.ts applies and
   * verifies), or only the servers whose own context it is (`lazy`: a handshake's load job,
   * which starts no other work; its renewal window is asked for on the next wake). Returns the
   * generation it replaced.
   */
  install(generation: Generation, meta: Meta, apply: 'targets' | 'deploy' | 'lazy'): Generation | undefined {
    const rt = this.#rt;
    const { id } = this;
    const replaced = this.#current;
    this.#current = generation;
    rt.cache.set(id, generation);
    this.#currentMeta = meta;
    this.#stored = { issuer: generation.issuer, meta: { ...meta, previous: null } };
    this.#plan.plan(generation.info.fingerprint256, generation.info);
    // Attached servers take it before this returns (their apply works synchronously).
    if (apply !== 'deploy' && this.config.purpose === 'server') {
      for (const attachment of rt.attachments)
        if (apply === 'targets' || attachment.defaultId === id)
          rt.applyInBackground(attachment, id, generation);
    }
    if (apply === 'targets') {
      for (const target of rt.targets) if (target.serves(id)) rt.applyInBackground(target, id, generation);
    }
    // Not while an attempt runs: its swap is not verified yet (the attempt resolves it).
    if (!this.#inflight) this.markReady();
    this.#settle();
    if (apply !== 'lazy') this.refreshWindow(generation);
    else if (rt.options.capabilities.get(generation.issuer)?.window) {
      this.#plan.refreshWindowAt(rt.options.clock.now());
      this.schedule();
    }
    return replaced;
  }

  /** Moves to a pointer another replica stored, for a certificate not in memory (adoption.ts). */
  adoptPointer(found: StoredPointer): void {
    this.#stored = found;
    this.#plan.plan(found.meta.fingerprint256, found.meta);
    this.markReady();
    this.#settle();
  }

  /** Revoked serials (here, or named by a stored pointer) are never served or fallen back to. */
  markRevoked(...serials: string[]): void {
    for (const serial of serials) this.#revoked.add(serial);
  }

  markReady(): void {
    this.#ready = true;
    this.#resolveReady();
  }

  // ---- attempts (renewal.ts) ---------------------------------------------------------------

  /** Resolves with the attempt's failure, or undefined once a new certificate is served. */
  obtain(reason: ObtainReason): Promise<CertkeeperError | undefined> {
    if (this.#inflight) {
      if (reason !== 'forced') return this.#inflight;
      // A forced renewal must produce a new certificate, not ride on an attempt that began
      // earlier: queue one more attempt after it (several callers share that one).
      this.#queuedForced ??= this.#inflight.then(() => {
        this.#queuedForced = undefined;
        return this.obtain('forced');
      });
      return this.#queuedForced;
    }
    this.#inflight = renew(this.#rt, this, reason).finally(() => {
      this.#inflight = undefined;
      this.#settle();
      this.schedule();
    });
    return this.#inflight;
  }

  /** An attempt begins: what blocked the last one is forgotten (ready() waits for this one). */
  beginAttempt(): number {
    this.#plan.unblock();
    if (this.#phase !== 'stopped') this.#phase = 'renewing';
    return this.#plan.failures + 1;
  }

  /** Committed under this configuration: it owns the id now (claims.ts). */
  claimed(): void {
    this.#replaces = undefined;
  }

  /** Whether the deploy of the served certificate was verified (undefined) or failed (its fingerprint). */
  setUnverified(fingerprint: string | undefined): void {
    this.#unverified = fingerprint;
  }

  succeeded(issuance?: RenewalPlan['lastIssuance']): void {
    this.#plan.succeeded(issuance);
  }

  /** Counts a failed attempt; the next one comes at `retryAt` (unless another certificate is adopted). */
  failed(failure: CertkeeperError, retryable: boolean, retryAt: number): void {
    this.#plan.failed(failure, retryable, retryAt, servedFacts(this)?.fingerprint256 ?? null);
  }

  /** What stop() waits for: the attempt and a queued one (issuer calls: `Runtime.background`). */
  pendingWork(): Promise<unknown>[] {
    return [this.#inflight, this.#queuedForced].filter((p) => p !== undefined);
  }

  /**
   * The last attempt found no attached server listening to answer TLS-ALPN-01 (not retried on
   * the usual schedule: each retry would be an order at the CA): one listens now, go again (once
   * an attempt still under way has ended).
   */
  retryWhenAnswerable(): void {
    const retry = () => {
      if (!this.removed && this.#plan.retryAfter('CHALLENGE_UNAVAILABLE', this.#rt.options.clock.now()))
        this.schedule();
    };
    if (this.#inflight) void this.#inflight.then(retry);
    else retry();
  }

  /** No longer managed: nothing more is scheduled or retried. */
  remove(): void {
    this.#removed = true;
    this.#phase = 'stopped';
  }

  /** The manager stopped: what is in memory stays readable, nothing more happens. */
  stop(): void {
    this.#phase = 'stopped';
  }

  // ---- timing ------------------------------------------------------------------------------

  /** Schedules the next wake: the next attempt, expiry warning or ARI refresh. */
  schedule(): void {
    const rt = this.#rt;
    if (this.removed || rt.stopped()) return;
    this.#dropVoidRetry();
    rt.scheduler.set(this.id, this.#plan.nextWake(rt.options.clock.now(), servedFacts(this)));
  }

  /** The scheduler's wake: warnings, an ARI refresh, and the attempt when one is due. */
  async tick(): Promise<void> {
    this.#dropVoidRetry();
    const now = this.#rt.options.clock.now();
    this.#warnExpiry(now);
    if (this.#current && this.#plan.takeWindowRefresh(now)) this.refreshWindow(this.#current);
    const reason = this.#plan.attemptDue(now, servedFacts(this));
    if (reason) await this.obtain(reason);
    else this.schedule();
  }

  /** When the next attempt is planned (not the next wake: a warning or ARI refresh may come first). */
  nextAttempt(): number | undefined {
    return this.#plan.nextAttempt(servedFacts(this) !== undefined) ?? this.#rt.scheduler.dueAt(this.id);
  }

  status(now: number): CertificateStatus {
    return statusOf(this, now, this.nextAttempt());
  }

  /**
   * Asks the issuer for a suggested renewal window (ACME ARI) and moves the renewal into it. What
   * the CA says is bounded (policy.ts): a window that is not one is ignored, renewal never moves
   * past 9/10 of the lifetime, the next refresh comes within [1 minute, 1 day].
   */
  refreshWindow(generation: Generation): void {
    const rt = this.#rt;
    const source = rt.options.capabilities.get(generation.issuer)?.window;
    if (!source || rt.stopped()) return;
    const context = rt.context(rt.signal);
    const asked = askWindow(source, generation, context, this.#plan.sample, rt.options, this.id);
    const answered = asked.then((answer) => {
      if (!answer || this.#current !== generation) return;
      if (answer.renewAt !== undefined) this.#plan.renewAt(answer.renewAt);
      this.#plan.refreshWindowAt(answer.refreshAt);
      this.schedule();
    });
    rt.track(answered);
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The phase after something changed, unless an attempt runs or the certificate is gone. */
  #settle(): void {
    if (this.#phase === 'stopped' || this.#inflight) return;
    this.#phase = servedFacts(this) ? 'serving' : this.#plan.lastError ? 'failed' : 'loading';
  }

  /** A retry for another certificate than the one served now is void (renewal-plan.ts). */
  #dropVoidRetry(): void {
    if (this.#inflight) return;
    if (this.#plan.dropVoidRetry(servedFacts(this)?.fingerprint256 ?? null)) this.#settle();
  }

  /** Emits the most severe newly crossed expiry threshold once. */
  #warnExpiry(now: number): void {
    const facts = servedFacts(this);
    const threshold = this.#plan.crossedWarning(now, facts);
    if (!facts || threshold === undefined) return;
    const { serial, notAfter } = facts;
    const remainingMs = notAfter.getTime() - now;
    this.#rt.options.logger.warn('certificate is expiring', { id: this.id, serial, remainingMs });
    this.#rt.emit('expiring', { id: this.id, serial, notAfter, remainingMs, threshold });
  }
}
