/**
 * `RedisStore`: the `Store` contract on Redis (standalone or behind Sentinel; not Cluster), via
 * the optional peer dependency `ioredis`, loaded on first use.
 *
 * Layout, all under `<prefix>:` so several applications share one Redis:
 *   <prefix>:v:<key>        hash { d: value bytes, m: modified, Redis clock ms }
 *   <prefix>:index          sorted set of every key (all scores 0), for `list`; rebuilt from the
 *                           values if it is found holding anything else
 *   <prefix>:lock:<name>    lease "token:owner:ttl", expiring by PX
 *   <prefix>:fence:<name>   fencing counter, INCR-ed per acquisition, never expires
 *   <prefix>:changes        pub/sub channel: the key of every committed put/delete
 *
 * Why these choices:
 * - Writes are Lua scripts (`./redis-scripts.ts`): HSET of the value, ZADD to the index and the
 *   PUBLISH happen atomically, so a reader sees the old or the new hash field, `list` never
 *   misses a stored key, and a notification is never sent for a write that did not happen.
 * - `list` reads the index with ZRANGEBYLEX instead of SCAN MATCH: SCAN walks the whole keyspace
 *   of a Redis shared with other applications, and glob patterns would need escaping of `*?[]\`
 *   in keys; a lexicographic range over "p/" .. "p0" is exact, segment-wise and cheap.
 * - Locks: SET NX PX in a script that INCRements the per-lock fencing counter only when the SET
 *   won; renewal, release and fenced writes compare "token:owner" first, in the same script as
 *   what they then do. A lock or counter this script cannot have written (no expiry, wrong type,
 *   not a number) is garbage and is repaired, never obeyed forever (see `ACQUIRE`). Leases expire on the Redis clock, so
 *   replicas' clocks do not matter; `expiresAt` is measured locally from before the request, so it
 *   errs early. Redis keeps nothing without persistence: after a restart of a Redis without AOF,
 *   values and fencing counters start over. Give a Redis that holds certificates persistence and
 *   `maxmemory-policy noeviction`.
 * - Connections: commands are not queued while disconnected (`enableOfflineQueue: false`) and
 *   not resent after a reconnect (`autoResendUnfulfilledCommands: false`), so a timed-out write or
 *   lock attempt cannot land minutes later. Instead each call waits for the connection to be
 *   ready within `timeoutMs`, then fails with `STORE_IO`. The first connection fails at once when
 *   the server refuses it.
 * - `watch` uses a second connection in subscriber mode; it reconnects forever, re-subscribes
 *   itself after every reconnect and then tells listeners to resync.
 */

import { randomUUID } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import { describeCause } from '../errors.js';
import { leaseExpiry, loadPeer } from './peer.js';
import { reconnectDelay, type Source, validate, whenReady } from './redis-connection.js';
import {
  ACQUIRE,
  DELETE,
  DELETE_FENCED,
  LIST,
  PUT,
  PUT_FENCED,
  RELEASE,
  RENEW,
  run,
  STAT,
} from './redis-scripts.js';
import { closedError, lockLostError } from './shared.js';
import { type LockAttempt, SharedStore, type SharedStoreOptions } from './shared-store.js';
import type { LockLease } from './store.js';
import type { WatchHub } from './watch.js';

/** The parts of an ioredis client a `RedisStore` uses; any ioredis `Redis` instance fits. */
export interface RedisClientLike {
  readonly status: string;
  callBuffer: (...args: never[]) => unknown;
  duplicate: (...args: never[]) => unknown;
  on: (...args: never[]) => unknown;
}

/** Options of `RedisStore`. */
export interface RedisStoreOptions extends SharedStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  url?: string;
  /** ioredis connection options (host, port, password, tls, db, sentinels, …), instead of a URL. */
  connection?: Record<string, unknown>;
  /**
   * An existing ioredis client. The store uses it but never closes it; `watch` opens its own
   * duplicate for subscribing. Its reconnect and queueing settings are its owner's.
   */
  client?: RedisClientLike;
  /** Namespace of every Redis key and channel: `[A-Za-z0-9_.-]{1,64}`. Default `certkeeper`. */
  prefix?: string;
}

/** A store in Redis (driver `ioredis`, an optional peer), shared by replicas. */
export class RedisStore extends SharedStore {
  /** The namespace of this store's Redis keys. */
  readonly prefix: string;
  readonly #source: Source;
  readonly #channel: string;
  #client: Promise<Redis> | undefined;
  #owned: Redis | undefined;
  #subscriber: Redis | undefined;
  #lastError: unknown;
  /** Whether the client this store created has connected once (until then, errors fail fast). */
  #everReady = false;

  constructor(options: RedisStoreOptions) {
    const { source, prefix } = validate(options);
    super('RedisStore', options);
    this.#source = source;
    this.prefix = prefix;
    this.#channel = `${prefix}:changes`;
  }

  protected async readValue(key: string, signal: AbortSignal): Promise<Uint8Array | null> {
    const value = await (await this.#redis(signal)).callBuffer('HGET', this.#valueKey(key), 'd');
    return value === null ? null : new Uint8Array(value as Buffer);
  }

  protected async writeValue(key: string, value: Uint8Array, signal: AbortSignal): Promise<void> {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await run(
      await this.#redis(signal),
      PUT,
      [this.#valueKey(key), this.#index],
      [bytes, key, this.#channel, this.#valueKey('')],
    );
  }

  protected async removeValue(key: string, signal: AbortSignal): Promise<boolean> {
    const keys = [this.#valueKey(key), this.#index];
    const args = [key, this.#channel, this.#valueKey('')];
    return (await run(await this.#redis(signal), DELETE, keys, args)) === 1;
  }

  protected async writeFenced(
    key: string,
    value: Uint8Array,
    fence: LockLease,
    signal: AbortSignal,
  ): Promise<boolean> {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const keys = [this.#valueKey(key), this.#index, this.#lockKeys(fence.name)[0]];
    const args = [bytes, key, this.#channel, this.#valueKey(''), `${fence.token}:${fence.owner}:`];
    return (await run(await this.#redis(signal), PUT_FENCED, keys, args)) !== 0;
  }

  protected async removeFenced(
    key: string,
    fence: LockLease,
    signal: AbortSignal,
  ): Promise<boolean | 'lost'> {
    const keys = [this.#valueKey(key), this.#index, this.#lockKeys(fence.name)[0]];
    const args = [key, this.#channel, this.#valueKey(''), `${fence.token}:${fence.owner}:`];
    const removed = await run(await this.#redis(signal), DELETE_FENCED, keys, args);
    return removed === -1 ? 'lost' : removed === 1;
  }

  protected async listKeys(prefix: string, signal: AbortSignal): Promise<string[]> {
    const found = await run(await this.#redis(signal), LIST, [this.#index], [prefix, this.#valueKey('')]);
    return (found as Buffer[]).map((key) => key.toString('utf8'));
  }

  protected async statValue(
    key: string,
    signal: AbortSignal,
  ): Promise<{ size: number; modified: Date } | null> {
    const found = await run(await this.#redis(signal), STAT, [this.#valueKey(key)], []);
    if (found === null) return null;
    const [size, modified] = found as [number, Buffer];
    return { size, modified: new Date(Number(modified.toString())) };
  }

  protected async acquire(name: string, ttlMs: number, signal: AbortSignal): Promise<LockAttempt> {
    const client = await this.#redis(signal);
    const owner = randomUUID();
    const ttl = Math.ceil(ttlMs);
    const startedAt = Date.now();
    const [token, left] = (await run(client, ACQUIRE, this.#lockKeys(name), [owner, ttl])) as [
      number,
      number,
    ];
    if (token === 0) return { retryInMs: left > 0 ? left : 1 };
    return { lease: Object.freeze({ name, token, owner, expiresAt: leaseExpiry(startedAt, ttl) }) };
  }

  protected async renew(
    lease: LockLease,
    ttlMs: number | undefined,
    signal: AbortSignal,
  ): Promise<LockLease> {
    const client = await this.#redis(signal);
    const startedAt = Date.now();
    const args = [`${lease.token}:${lease.owner}:`, ttlMs === undefined ? '' : Math.ceil(ttlMs)];
    const ttl = (await run(client, RENEW, [this.#lockKeys(lease.name)[0]!], args)) as number;
    if (ttl < 0) throw lockLostError(lease.name, lease.token, 'released, lapsed or taken over');
    return Object.freeze({ ...lease, expiresAt: leaseExpiry(startedAt, ttl) });
  }

  protected async release(lease: LockLease, signal: AbortSignal): Promise<boolean> {
    const client = await this.#redis(signal);
    const lock = this.#lockKeys(lease.name)[0]!;
    return (await run(client, RELEASE, [lock], [`${lease.token}:${lease.owner}:`])) === 1;
  }

  protected async subscribe(hub: WatchHub, signal: AbortSignal): Promise<void> {
    const main = await this.#redis(signal);
    const overrides: Partial<RedisOptions> = {
      lazyConnect: true,
      // Resubscribing is ours, so listeners can be told to resync once it is really done.
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: reconnectDelay,
      ...(this.#owned ? { connectionName: `certkeeper:${this.prefix}:watch` } : {}),
    };
    const sub = main.duplicate(overrides);
    this.#subscriber = sub;
    let lastError: unknown;
    let live = false;
    sub.on('error', (err: unknown) => {
      lastError = err;
    });
    sub.on('message', (channel: string, key: string) => {
      if (channel === this.#channel) hub.change(key);
    });
    let interrupted = false;
    sub.on('close', () => {
      // Once per outage: ioredis reports every failed reconnect attempt as another close.
      if (!live || interrupted || this.closed) return;
      interrupted = true;
      this.logger.warn('RedisStore: change notifications interrupted; reconnecting', {
        prefix: this.prefix,
      });
    });
    sub.on('ready', () => {
      if (!live || this.closed) return;
      sub.subscribe(this.#channel).then(
        () => {
          interrupted = false;
          hub.resync();
        },
        (err: unknown) =>
          this.logger.warn('RedisStore: re-subscribing failed', { error: describeCause(err) }),
      );
    });
    try {
      await whenReady(sub, signal, true, () => lastError);
      await sub.subscribe(this.#channel);
      live = true;
    } catch (err) {
      sub.disconnect();
      if (this.#subscriber === sub) this.#subscriber = undefined;
      throw err;
    }
  }

  protected async shutdown(): Promise<void> {
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    const owned = this.#owned;
    this.#owned = undefined;
    if (owned && owned.status !== 'wait' && owned.status !== 'end') {
      // QUIT lets in-flight replies arrive; a dead connection is simply dropped.
      await Promise.race([owned.quit().catch(() => {}), new Promise((r) => setTimeout(r, 200).unref())]);
    }
    owned?.disconnect();
  }

  protected lockId(name: string): string {
    return `redis\0${this.prefix}\0${name}`;
  }

  #valueKey(key: string): string {
    return `${this.prefix}:v:${key}`;
  }

  get #index(): string {
    return `${this.prefix}:index`;
  }

  #lockKeys(name: string): [string, string] {
    return [`${this.prefix}:lock:${name}`, `${this.prefix}:fence:${name}`];
  }

  /** The connected client: created on first use, waited for (within the call's deadline) after a drop. */
  async #redis(signal: AbortSignal): Promise<Redis> {
    if (!this.#client) {
      const creating = this.#create();
      this.#client = creating;
      creating.catch(() => {
        if (this.#client === creating) this.#client = undefined;
      });
    }
    const pending = this.#client;
    const client = await pending;
    const fresh = client === this.#owned && !this.#everReady;
    try {
      await whenReady(client, signal, fresh, () => this.#lastError);
    } catch (err) {
      if (fresh && this.#client === pending) {
        // Never connected: drop the client rather than leave it retrying in the background.
        this.#client = undefined;
        this.#owned = undefined;
        client.disconnect();
      }
      throw err;
    }
    if (client === this.#owned) this.#everReady = true;
    return client;
  }

  async #create(): Promise<Redis> {
    if ('client' in this.#source) return this.#source.client;
    const module = await loadPeer('ioredis', 'RedisStore', () => import('ioredis'));
    if (this.closed) throw closedError('RedisStore');
    const RedisClass = (module.Redis ??
      (module as unknown as { default: typeof Redis }).default) as typeof Redis;
    const ours: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      retryStrategy: reconnectDelay,
      connectionName: `certkeeper:${this.prefix}`,
    };
    const client =
      'url' in this.#source
        ? new RedisClass(this.#source.url, ours)
        : new RedisClass({ ...(this.#source.connection as RedisOptions), ...ours });
    client.on('error', (err: unknown) => {
      this.#lastError = err;
    });
    // Every call waiting for the connection listens for ready/error/end until it is up: a fleet
    // loading thousands of entries at start-up has thousands waiting, which is not a leak.
    client.setMaxListeners(0);
    this.#owned = client;
    this.#everReady = false;
    return client;
  }
}
