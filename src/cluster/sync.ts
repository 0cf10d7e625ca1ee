/**
 * Keeping replicas that share a store in step, without hard polling:
 *   - certificate pointers another replica committed are picked up from the store's change
 *     notifications (`watch`: Redis pub/sub, PostgreSQL LISTEN/NOTIFY) within about a second;
 *   - a periodic reconcile re-reads every pointer as the safety net (missed notifications,
 *     stores without `watch`, such as a FileStore shared by processes on one host);
 *   - TLS-ALPN-01 challenge certificates written by the replica running an order are loaded into
 *     this replica's memory and acknowledged (see membership.ts), so whichever replica the CA's
 *     validation connection reaches can answer it. Anyone who can write the store could write
 *     such a record, so only a genuine challenge (alpn-record.ts) for a name this replica answers
 *     TLS-ALPN-01 for is loaded; with encryption keys the record is sealed as well.
 */
import { ackAlpn, alpnDigest } from '../challenges/tls-alpn-01/acks.js';
import { alpnIdentifier, readAlpnRecord } from '../challenges/tls-alpn-01/record.js';
import type { AlpnChallengeRegistry } from '../challenges/tls-alpn-01/registry.js';
import type { Clock } from '../clock.js';
import { describeCause } from '../errors.js';
import type { Logger } from '../logger.js';
import { layout } from '../store/layout.js';
import type { Store, StoreChange } from '../store/store.js';
import { heartbeat, leave, MEMBER_TTL_MS } from './membership.js';

export interface ClusterHost {
  store: Store;
  clock: Clock;
  logger: Logger;
  alpn: AlpnChallengeRegistry;
  replicaId: string;
  /** A certificate pointer (`.../current.json`) changed in the store. */
  onPointer(key: string): void;
  /** Anything may have changed: re-read every pointer. */
  onResync(): void;
  /** Whether this replica answers TLS-ALPN-01 for `identifier` (one of its names, ordered with it). */
  answersTlsAlpn(identifier: { type: 'dns' | 'ip'; value: string }): boolean;
}

export interface ClusterOptions {
  /** Periodic re-read of every pointer (default 60 s; 0 disables). */
  reconcileIntervalMs: number;
}

/** Retries of a failed subscription: soon at first (a store restarting), then every 30 s. */
const WATCH_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export class ClusterSync {
  readonly #host: ClusterHost;
  readonly #options: ClusterOptions;
  readonly #unwatch: (() => void)[] = [];
  #reconcileTimer: unknown;
  #heartbeatTimer: unknown;
  #watchTimer: unknown;
  #watchFailures = 0;
  #stopped = false;
  #member = false;

  constructor(host: ClusterHost, options: ClusterOptions) {
    this.#host = host;
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#host.store.watch) await this.#subscribe();
    this.#armReconcile();
  }

  /**
   * Subscribes to the store's changes and joins the membership. A store that is unreachable now
   * (a replica starting during an outage, serving its local copy) is tried again in the
   * background until it answers: until then this replica misses other replicas' renewals for
   * up to a reconcile interval and, worse, never holds their TLS-ALPN-01 challenges.
   */
  async #subscribe(): Promise<void> {
    const { store, logger } = this.#host;
    const unwatch: (() => void)[] = [];
    try {
      unwatch.push(await store.watch!(layout.certificates(), (c) => this.#onCertificates(c)));
      unwatch.push(await store.watch!(layout.alpnRecords(), (c) => void this.#onAlpn(c)));
    } catch (error) {
      for (const fn of unwatch) fn();
      if (this.#stopped) return;
      const delay = WATCH_RETRY_MS[Math.min(this.#watchFailures, WATCH_RETRY_MS.length - 1)]!;
      if (this.#watchFailures++ === 0) {
        // Without notifications the periodic reconcile still converges, only slower.
        logger.warn(
          'store change notifications unavailable; retrying, relying on periodic reconcile meanwhile',
          {
            error: describeCause(error),
          },
        );
      }
      this.#watchTimer = this.#host.clock.setTimeout(() => void this.#subscribe(), delay);
      return;
    }
    if (this.#stopped) {
      for (const fn of unwatch) fn();
      return;
    }
    this.#unwatch.push(...unwatch);
    this.#member = true;
    await this.#beat();
    await this.#syncAllAlpn();
    if (this.#watchFailures > 0) {
      this.#watchFailures = 0;
      logger.info('store change notifications available again');
      // What changed while nobody was listening.
      this.#host.onResync();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
    if (this.#reconcileTimer !== undefined) this.#host.clock.clearTimeout(this.#reconcileTimer);
    if (this.#heartbeatTimer !== undefined) this.#host.clock.clearTimeout(this.#heartbeatTimer);
    if (this.#watchTimer !== undefined) this.#host.clock.clearTimeout(this.#watchTimer);
    if (this.#member) await leave(this.#host.store, this.#host.replicaId).catch(() => {});
  }

  #armReconcile(): void {
    if (this.#stopped || this.#options.reconcileIntervalMs <= 0) return;
    this.#reconcileTimer = this.#host.clock.setTimeout(() => {
      this.#host.onResync();
      if (this.#member) void this.#syncAllAlpn();
      this.#armReconcile();
    }, this.#options.reconcileIntervalMs);
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return;
    try {
      await heartbeat(this.#host.store, this.#host.replicaId, this.#host.clock.now(), MEMBER_TTL_MS);
    } catch (error) {
      this.#host.logger.debug('heartbeat failed', { error: describeCause(error) });
    }
    if (this.#stopped) return;
    // Beats also come from resyncs: keep one timer whatever the number of beats in flight.
    if (this.#heartbeatTimer !== undefined) this.#host.clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = this.#host.clock.setTimeout(() => void this.#beat(), MEMBER_TTL_MS / 3);
  }

  #onCertificates(change: StoreChange): void {
    if (change.type === 'resync') this.#host.onResync();
    else if (layout.isPointer(change.key)) this.#host.onPointer(change.key);
  }

  async #onAlpn(change: StoreChange): Promise<void> {
    if (change.type === 'resync') {
      // The store was unreachable and may have lost this replica's heartbeat (a Redis restarted
      // without persistence): until the next beat, replicas ordering with TLS-ALPN-01 would not
      // wait for this one to hold their challenge.
      await this.#beat();
      await this.#syncAllAlpn();
      return;
    }
    await this.#syncAlpn(change.key);
  }

  async #syncAllAlpn(): Promise<void> {
    try {
      for (const key of await this.#host.store.list(layout.alpnRecords())) await this.#syncAlpn(key);
    } catch (error) {
      this.#host.logger.debug('TLS-ALPN-01 resync failed', { error: describeCause(error) });
    }
  }

  /** Loads (or drops) one challenge certificate and acknowledges holding it. */
  async #syncAlpn(key: string): Promise<void> {
    const servername = layout.parseAlpnRecord(key);
    if (!servername) return;
    const { store, alpn, replicaId, logger } = this.#host;
    const identifier = alpnIdentifier(servername);
    if (!identifier || !this.#host.answersTlsAlpn(identifier)) {
      // Another fleet sharing the store, or a planted record: not ours to answer.
      alpn.delete(servername);
      logger.debug('ignored a TLS-ALPN-01 challenge for a name this replica does not answer', { servername });
      return;
    }
    let raw: Uint8Array | null;
    try {
      raw = await store.get(key);
    } catch (error) {
      // A store error is not a refusal; a record the store refuses to open (plaintext where it
      // must be sealed, sealed with another key) is.
      if ((error as { code?: unknown }).code !== 'STORE_CORRUPT') {
        logger.warn('could not read a TLS-ALPN-01 challenge from the store', {
          servername,
          error: describeCause(error),
        });
        return;
      }
      this.#refused(servername, error);
      return;
    }
    if (!raw) {
      alpn.delete(servername);
      return;
    }
    try {
      alpn.set(servername, readAlpnRecord(servername, raw));
    } catch (error) {
      this.#refused(servername, error);
      return;
    }
    try {
      await ackAlpn(store, servername, replicaId, alpnDigest(raw));
    } catch (error) {
      logger.warn('could not acknowledge a TLS-ALPN-01 challenge', {
        servername,
        error: describeCause(error),
      });
    }
  }

  /** Drops what was held for `servername`: it came from a record now refused. */
  #refused(servername: string, error: unknown): void {
    this.#host.alpn.delete(servername);
    this.#host.logger.warn('refused a TLS-ALPN-01 challenge from the store', {
      servername,
      code: (error as { code?: unknown }).code,
      error: describeCause(error),
    });
  }
}
