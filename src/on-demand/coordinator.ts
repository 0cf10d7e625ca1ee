/**
 * On-demand certificates at handshake time. The lookup order of a handshake for `name`:
 *
 * 1. memory (`cached`, synchronous): served at once; when a third of its lifetime is left the
 *    handshake also starts a renewal in the background (renewal happens only while it is used);
 * 2. otherwise admission (`Admission.admit`: name checks, denied and failed names, `decide`);
 * 3. one flight per name in this process: the store (stored by an earlier run or another replica),
 *    then the name's order lock, then the store again (another replica may have just stored it),
 *    and only then an order, within the budgets and the bound on concurrent orders;
 * 4. the handshake waits for the flight at most `waitMs`; the flight itself goes on (up to
 *    `orderTimeoutMs`) so the next handshake finds the certificate.
 */
import tls from 'node:tls';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import { withLock } from '../store/with-lock.js';
import { Admission, type HandshakeHello } from './admission.js';
import { type DenyReason, OnDemandEvents } from './events.js';
import type { OnDemandCertificate, OnDemandHost } from './host.js';
import { onDemandKeys } from './keys.js';
import { CertificateMemory, type MemoryEntry, renewAtOf } from './memory.js';
import { type OnDemandOptions, type ResolvedOnDemandOptions, resolveOnDemandOptions } from './options.js';
import { SeenRecords } from './seen.js';

export type OnDemandSource = 'memory' | 'store' | 'ordered';

export type OnDemandOutcome =
  | { context: tls.SecureContext; source: OnDemandSource }
  | {
      context: null;
      /** Why there is no certificate: a denial, `failed` (the order failed) or `timeout` (still ordering). */
      reason: DenyReason | 'failed' | 'timeout' | 'closed';
    };

type FlightResult = { entry: MemoryEntry; source: 'store' | 'ordered' } | { reason: DenyReason | 'failed' };

export class OnDemandCoordinator {
  readonly options: ResolvedOnDemandOptions;
  readonly events: OnDemandEvents;
  readonly admission: Admission;
  readonly #host: OnDemandHost;
  readonly #memory: CertificateMemory;
  readonly #flights = new Map<string, Promise<FlightResult>>();
  /** Orders and commits still running (they outlive the flight's first answer). */
  readonly #pending = new Set<Promise<FlightResult>>();
  readonly #seen: SeenRecords;
  readonly #closing = new AbortController();
  #sweepTimer: unknown;

  constructor(host: OnDemandHost, options: OnDemandOptions) {
    this.options = resolveOnDemandOptions(options);
    this.#host = host;
    this.events = new OnDemandEvents((error) =>
      host.logger.warn('on-demand event listener threw', { error: String(error) }),
    );
    this.admission = new Admission(this.options.decide, this.options.limits, host.clock, this.events);
    this.#memory = new CertificateMemory(this.options.maxInMemory);
    this.#seen = new SeenRecords(host, this.options, this.#memory, this.events);
    this.#armSweep();
  }

  /**
   * The context held in memory for `servername`, or undefined. Synchronous, for the hot path of
   * names already served. Starts the in-use renewal when it is due.
   */
  cached(servername: string, hello: HandshakeHello = {}): tls.SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const entry = this.#memory.get(name);
    if (!entry) return undefined;
    const now = this.#host.clock.now();
    if (now >= entry.notAfter) {
      this.#memory.delete(name);
      return undefined;
    }
    entry.lastSeen = now;
    this.#seen.touch(name, entry);
    if (now >= entry.renewAt && !this.#flights.has(name) && !this.#closing.signal.aborted) {
      this.#flight(name, hello, entry.certificate).catch(() => {});
    }
    return entry.context;
  }

  /** A context for `servername`, waiting at most `waitMs` for a new certificate. Never throws. */
  async obtainForHandshake(servername: string, hello: HandshakeHello = {}): Promise<OnDemandOutcome> {
    const hit = this.cached(servername, hello);
    if (hit) return { context: hit, source: 'memory' };
    if (this.#closing.signal.aborted) return { context: null, reason: 'closed' };
    const flight =
      this.#flights.get(servername.toLowerCase().replace(/\.$/, '')) ?? this.#flight(servername, hello);
    let timer: unknown;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.#host.clock.setTimeout(() => resolve('timeout'), this.options.waitMs);
    });
    try {
      const result = await Promise.race([flight, timeout]);
      if (result === 'timeout') return { context: null, reason: 'timeout' };
      if ('reason' in result) return { context: null, reason: result.reason };
      return { context: result.entry.context, source: result.source };
    } catch {
      return { context: null, reason: 'failed' };
    } finally {
      this.#host.clock.clearTimeout(timer);
    }
  }

  /**
   * One admission and at most one order per name at a time in this process. The flight stays
   * registered until its commit is done too, so a handshake for a name whose certificate left
   * memory before it reached the store still finds it here.
   */
  #flight(servername: string, hello: HandshakeHello, current?: OnDemandCertificate): Promise<FlightResult> {
    const key = servername.toLowerCase().replace(/\.$/, '');
    const existing = this.#flights.get(key);
    if (existing) return existing;
    let settled: Promise<unknown> | undefined;
    const run = (async (): Promise<FlightResult> => {
      const admitted = await this.admission.admit(servername, hello);
      if (!admitted.ok) return { reason: admitted.reason };
      const existingForName = admitted.name === key ? undefined : this.#flights.get(admitted.name);
      if (existingForName) return existingForName;
      const fetch = this.#fetch(admitted.name, current);
      settled = fetch.settled;
      return fetch.first;
    })();
    this.#flights.set(key, run);
    const done = () => {
      if (this.#flights.get(key) === run) this.#flights.delete(key);
    };
    run
      .then(() => settled)
      .catch(() => {})
      .then(done);
    return run;
  }

  /**
   * Store, lock, store again, order. Resolves as soon as the certificate is issued (the host's
   * `onIssued`), while the commit to the store and the lock release finish behind it.
   */
  #fetch(
    name: string,
    current?: OnDemandCertificate,
  ): { first: Promise<FlightResult>; settled: Promise<FlightResult> } {
    let early: ((result: FlightResult) => void) | undefined;
    const issued = new Promise<FlightResult>((resolve) => {
      early = resolve;
    });
    let remembered: MemoryEntry | undefined;
    // Idempotent: the host calls it once issued, the coordinator again once committed.
    const onIssued = (certificate: OnDemandCertificate): MemoryEntry => {
      if (remembered?.certificate !== certificate) remembered = this.#remember(name, certificate);
      early?.({ entry: remembered, source: 'ordered' });
      early = undefined;
      return remembered;
    };
    const settled = this.#fetchLocked(name, onIssued, current);
    this.#pending.add(settled);
    settled.finally(() => this.#pending.delete(settled));
    return { first: Promise.race([issued, settled]), settled };
  }

  async #fetchLocked(
    name: string,
    onIssued: (certificate: OnDemandCertificate) => MemoryEntry,
    current?: OnDemandCertificate,
  ): Promise<FlightResult> {
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(this.options.orderTimeoutMs)]);
    try {
      const stored = await this.#host.load(name, signal);
      if (stored && this.#fresh(stored, current)) return this.#adopt(name, stored, false);
      const over = this.admission.outOfBudget(name);
      if (over) return { reason: over.reason as DenyReason };
      return await withLock(
        this.#host.store,
        onDemandKeys.orderLock(name),
        async (lease, locked) => {
          const again = await this.#host.load(name, locked);
          if (again && this.#fresh(again, current)) return this.#adopt(name, again, true);
          const release = await this.admission.beginOrder(name, locked);
          if (typeof release !== 'function') return { reason: release.reason };
          try {
            this.events.emit({ type: 'ordered', name, renewal: Boolean(current ?? again) });
            const started = this.#host.clock.now();
            const certificate = await this.#host.obtain(name, {
              signal: locked,
              lease,
              current: current ?? again ?? undefined,
              onIssued,
            });
            this.admission.succeeded(name);
            const entry = onIssued(certificate);
            this.events.emit({
              type: 'obtained',
              name,
              serial: certificate.info.serialNumber,
              ms: this.#host.clock.now() - started,
            });
            return { entry, source: 'ordered' as const };
          } finally {
            release();
          }
        },
        { ttlMs: this.options.lockTtlMs, signal },
      );
    } catch (error) {
      this.admission.failed(name, error);
      this.#host.logger.warn('on-demand certificate failed', {
        name,
        code: isCertkeeperError(error) ? error.code : undefined,
        error: error instanceof Error ? error.message : String(error),
      });
      return { reason: 'failed' };
    }
  }

  /** A stored certificate that is not due for renewal, and not the very one being renewed. */
  #fresh(certificate: OnDemandCertificate, current?: OnDemandCertificate): boolean {
    if (current && certificate.info.serialNumber === current.info.serialNumber) return false;
    return this.#host.clock.now() < renewAtOf(certificate);
  }

  #adopt(name: string, certificate: OnDemandCertificate, waitedForLock: boolean): FlightResult {
    const entry = this.#remember(name, certificate);
    this.admission.succeeded(name);
    this.events.emit({ type: 'loaded', name, serial: certificate.info.serialNumber, waitedForLock });
    return { entry, source: 'store' };
  }

  #remember(name: string, certificate: OnDemandCertificate): MemoryEntry {
    const now = this.#host.clock.now();
    const context = this.#host.secureContext
      ? this.#host.secureContext(certificate)
      : tls.createSecureContext({ cert: certificate.chainPem, key: certificate.key.toPem() });
    const entry: MemoryEntry = {
      certificate,
      context,
      renewAt: renewAtOf(certificate),
      notAfter: certificate.info.notAfter.getTime(),
      lastSeen: now,
      seenStoredAt: 0,
    };
    this.#memory.set(name, entry);
    this.#seen.touch(name, entry);
    return entry;
  }

  /**
   * Removes certificates not served for `forgetAfterMs`: from memory, and from the store (each
   * under its order lock, skipped when another replica holds it). Returns how many of each.
   */
  sweep(): Promise<{ memory: number; store: number }> {
    return this.#seen.sweep(this.#closing.signal);
  }

  #armSweep(): void {
    if (this.options.sweepIntervalMs === 0 || this.#closing.signal.aborted) return;
    this.#sweepTimer = this.#host.clock.setTimeout(() => {
      this.sweep()
        .catch((error) => this.#host.logger.warn('on-demand sweep failed', { error: String(error) }))
        .finally(() => this.#armSweep());
    }, this.options.sweepIntervalMs);
  }

  /** Stops the sweep timer and gives up running orders; later handshakes get `closed`. */
  async close(): Promise<void> {
    this.#closing.abort(new CertkeeperError('MANAGER_STOPPED', 'on-demand coordinator closed'));
    this.#host.clock.clearTimeout(this.#sweepTimer);
    await Promise.allSettled([...this.#flights.values(), ...this.#pending, this.#seen.idle()]);
  }

  /** Sizes of everything this coordinator keeps, for the status snapshot and tests. */
  status() {
    return {
      inMemory: this.#memory.size,
      evicted: this.#memory.evictions,
      flights: this.#flights.size,
      ...this.admission.sizes,
      peakConcurrentOrders: this.admission.slots.peak,
      budgets: this.admission.budgets.usage(this.#host.clock.now()),
      counts: this.events.counts,
    };
  }
}
