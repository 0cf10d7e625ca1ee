/**
 * Keeping replicas that share a store in step, without hard polling:
 *   - certificate pointers another replica committed are picked up from the store's change
 *     notifications (`watch`: Redis pub/sub, PostgreSQL LISTEN/NOTIFY) within about a second;
 *   - a periodic reconcile re-reads every pointer as the safety net (missed notifications,
 *     stores without `watch`, such as a FileStore shared by processes on one host);
 *   - TLS-ALPN-01 challenge certificates written by the replica running an order are loaded into
 *     this replica's memory and acknowledged (see membership.ts), so whichever replica the CA's
 *     validation connection reaches can answer it.
 */
import type { AlpnChallengeRegistry } from '../challenges/alpn-registry.js';
import type { Clock } from '../clock.js';
import { describeCause } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Store, StoreChange } from '../store/store.js';
import { ackAlpn, heartbeat, leave, MEMBER_TTL_MS } from './membership.js';

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
}

export interface ClusterOptions {
  /** Periodic re-read of every pointer (default 60 s; 0 disables). */
  reconcileIntervalMs: number;
}

const ALPN_PREFIX = 'challenges/tls-alpn-01';

export class ClusterSync {
  readonly #host: ClusterHost;
  readonly #options: ClusterOptions;
  readonly #unwatch: (() => void)[] = [];
  #reconcileTimer: unknown;
  #heartbeatTimer: unknown;
  #stopped = false;
  #member = false;

  constructor(host: ClusterHost, options: ClusterOptions) {
    this.#host = host;
    this.#options = options;
  }

  async start(): Promise<void> {
    const { store } = this.#host;
    if (store.watch) {
      try {
        this.#unwatch.push(await store.watch('certificates', (c) => this.#onCertificates(c)));
        this.#unwatch.push(await store.watch(ALPN_PREFIX, (c) => void this.#onAlpn(c)));
        this.#member = true;
        await this.#beat();
        await this.#syncAllAlpn();
      } catch (error) {
        // Without notifications the periodic reconcile still converges, only slower.
        this.#host.logger.warn('store change notifications unavailable; relying on periodic reconcile', {
          error: describeCause(error),
        });
      }
    }
    this.#armReconcile();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
    if (this.#reconcileTimer !== undefined) this.#host.clock.clearTimeout(this.#reconcileTimer);
    if (this.#heartbeatTimer !== undefined) this.#host.clock.clearTimeout(this.#heartbeatTimer);
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
    this.#heartbeatTimer = this.#host.clock.setTimeout(() => void this.#beat(), MEMBER_TTL_MS / 3);
  }

  #onCertificates(change: StoreChange): void {
    if (change.type === 'resync') this.#host.onResync();
    else if (change.key.endsWith('/current.json')) this.#host.onPointer(change.key);
  }

  async #onAlpn(change: StoreChange): Promise<void> {
    if (change.type === 'resync') {
      await this.#syncAllAlpn();
      return;
    }
    await this.#syncAlpn(change.key);
  }

  async #syncAllAlpn(): Promise<void> {
    try {
      for (const key of await this.#host.store.list(ALPN_PREFIX)) await this.#syncAlpn(key);
    } catch (error) {
      this.#host.logger.debug('TLS-ALPN-01 resync failed', { error: describeCause(error) });
    }
  }

  /** Loads (or drops) one challenge certificate and acknowledges holding it. */
  async #syncAlpn(key: string): Promise<void> {
    const servername = key.slice(ALPN_PREFIX.length + 1);
    if (!servername || servername.includes('/')) return;
    const { store, alpn, replicaId } = this.#host;
    try {
      const raw = await store.get(key);
      if (!raw) {
        alpn.delete(servername);
        return;
      }
      const credentials = JSON.parse(Buffer.from(raw).toString('utf8')) as { key: string; cert: string };
      alpn.set(servername, credentials);
      await ackAlpn(store, servername, replicaId);
    } catch (error) {
      this.#host.logger.warn('could not load a TLS-ALPN-01 challenge from the store', {
        servername,
        error: describeCause(error),
      });
    }
  }
}
