/**
 * What `RedisStore` and `PostgresStore` have in common, so each of them is only its engine:
 * key validation, the closed state, encryption of sensitive values at rest (`./envelope.ts`),
 * deadlines and error mapping around every server call, the `lock()` wait loop, and the `watch`
 * listener registry. Subclasses implement the raw operations below. Internal: the class is not
 * exported from the package by name.
 */
import { optionError } from '../errors.js';
import { defaultLogger, type Logger } from '../logger.js';
import { assertStoreKey } from './layout.js';
import { assertEncodable, bounded, DEFAULT_TIMEOUT_MS, peerError, positiveMs } from './peer.js';
import { type EncryptionChoice, type ReencryptResult, reencrypt, Sealer } from './sealer.js';
import { abortedError, closedError, fencedOut, fenceOf, leaseTtl, toBytes, Waiters } from './shared.js';
import type {
  LockLease,
  LockOptions,
  RecordSealing,
  Store,
  StoreChangeListener,
  StoreStat,
  WriteOptions,
} from './store.js';
import { WatchHub } from './watch.js';

/** Options shared by `RedisStore` and `PostgresStore`. */
export interface SharedStoreOptions {
  /**
   * Encryption of private keys at rest (AES-256-GCM). Default: keys from the
   * `CERTKEEPER_ENCRYPTION_KEY` environment variable; with none there, the store refuses to be
   * created (`INVALID_OPTION`, option `encryption`). `'none'` (or `false`) stores private keys
   * unencrypted deliberately: then whoever can read the server holds them.
   */
  encryption?: EncryptionChoice;
  /** Deadline for connecting and for each operation, in ms. Default 5000. */
  timeoutMs?: number;
  /** Receives warnings (a lost notification connection). Default: console. */
  logger?: Logger;
}

/** A lock attempt either wins a lease or learns how long the current one has left. */
export type LockAttempt = { lease: LockLease } | { retryInMs: number };

/** Waiting `lock()` calls in this process are woken when a store here releases; others poll. */
const releases = new Waiters();
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 250;

const quote = (key: string) => JSON.stringify(key);

export abstract class SharedStore implements Store {
  /** Sealed records (see `Store.sealing`): present when an encryption key is configured. */
  readonly sealing?: RecordSealing;
  protected readonly logger: Logger;
  protected readonly timeoutMs: number;
  readonly #name: string;
  readonly #sealer: Sealer;
  readonly #hub: WatchHub;
  readonly #closing = new AbortController();
  #subscription: Promise<void> | undefined;
  #shutdown: Promise<void> | undefined;

  protected constructor(name: string, options: SharedStoreOptions) {
    this.#name = name;
    const { logger = defaultLogger } = options;
    if (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function') {
      throw optionError('logger', 'must be an object with debug/info/warn/error methods');
    }
    this.logger = logger;
    this.timeoutMs = positiveMs(options.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    this.#sealer = new Sealer(options.encryption, {
      owner: name,
      option: 'encryption',
      logger,
      required: true,
    });
    if (this.#sealer.records) this.sealing = this.#sealer.records;
    this.#hub = new WatchHub(name, logger);
  }

  // ---- the engine ------------------------------------------------------------------------------
  // Each runs under `io()`: a deadline (the signal aborts when it passes) and error mapping.

  protected abstract readValue(key: string, signal: AbortSignal): Promise<Uint8Array | null>;
  /** Atomic: readers see the old value or the new one. Also announces the key to watchers. */
  protected abstract writeValue(key: string, value: Uint8Array, signal: AbortSignal): Promise<void>;
  /** Also announces the key to watchers when it existed. */
  protected abstract removeValue(key: string, signal: AbortSignal): Promise<boolean>;
  /**
   * `writeValue` only while `fence` is the current, unlapsed lease of its lock, checked in the
   * same atomic step as the write. Returns false, having written nothing, when it is not.
   */
  protected abstract writeFenced(
    key: string,
    value: Uint8Array,
    fence: LockLease,
    signal: AbortSignal,
  ): Promise<boolean>;
  /** `removeValue` under a fence, as `writeFenced`: `'lost'` when the lease is not current. */
  protected abstract removeFenced(
    key: string,
    fence: LockLease,
    signal: AbortSignal,
  ): Promise<boolean | 'lost'>;
  protected abstract listKeys(prefix: string, signal: AbortSignal): Promise<string[]>;
  protected abstract statValue(
    key: string,
    signal: AbortSignal,
  ): Promise<{ size: number; modified: Date } | null>;
  protected abstract acquire(name: string, ttlMs: number, signal: AbortSignal): Promise<LockAttempt>;
  /** Throws `LOCK_LOST` when the lease is no longer held. */
  protected abstract renew(
    lease: LockLease,
    ttlMs: number | undefined,
    signal: AbortSignal,
  ): Promise<LockLease>;
  protected abstract release(lease: LockLease, signal: AbortSignal): Promise<boolean>;
  /** Starts the notification connection feeding `hub`; keeps it alive (re-subscribing) until shutdown. */
  protected abstract subscribe(hub: WatchHub, signal: AbortSignal): Promise<void>;
  /** Closes the connections this store opened (never a client it was given). */
  protected abstract shutdown(): Promise<void>;
  /** Identifies a lock across the stores of this process that share a backend namespace. */
  protected abstract lockId(name: string): string;

  // ---- the Store contract ----------------------------------------------------------------------

  async get(key: string): Promise<Uint8Array | null> {
    this.#key(key);
    const stored = await this.io(`reading store key ${quote(key)}`, { key }, (s) => this.readValue(key, s));
    return this.#sealer.open(key, stored);
  }

  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    this.#key(key);
    const fence = this.#fence(options);
    const sealed = this.#sealer.seal(key, toBytes(value));
    const what = `writing store key ${quote(key)}`;
    if (!fence) return this.io(what, { key }, (s) => this.writeValue(key, sealed, s));
    const written = await this.io(what, { key, lock: fence.name, token: fence.token }, (s) =>
      this.writeFenced(key, sealed, fence, s),
    );
    if (!written) throw fencedOut(fence, key);
  }

  async delete(key: string, options?: WriteOptions): Promise<boolean> {
    this.#key(key);
    const fence = this.#fence(options);
    const what = `deleting store key ${quote(key)}`;
    if (!fence) return this.io(what, { key }, (s) => this.removeValue(key, s));
    const removed = await this.io(what, { key, lock: fence.name, token: fence.token }, (s) =>
      this.removeFenced(key, fence, s),
    );
    if (removed === 'lost') throw fencedOut(fence, key);
    return removed;
  }

  async list(prefix: string): Promise<string[]> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    assertEncodable(prefix);
    return this.io(`listing store prefix ${quote(prefix)}`, { prefix }, (s) => this.listKeys(prefix, s));
  }

  /** For encrypted values, `size` is the plaintext's, read from the envelope header. */
  async stat(key: string): Promise<StoreStat | null> {
    this.#key(key);
    const what = `reading store key ${quote(key)}`;
    const info = await this.io(what, { key }, (s) => this.statValue(key, s));
    if (info === null) return null;
    if (!this.#sealer.covers(key)) return { key, size: info.size, modified: info.modified };
    const stored = await this.io(what, { key }, (s) => this.readValue(key, s));
    if (stored === null) return null; // deleted between the two reads
    return { key, size: this.#sealer.plainSize(key, stored), modified: info.modified };
  }

  async lock(name: string, options: LockOptions = {}): Promise<LockLease> {
    this.#key(name);
    const ttlMs = leaseTtl(options.ttlMs);
    const { signal } = options;
    let poll = FIRST_POLL_MS;
    let early = false;
    for (;;) {
      if (signal?.aborted) throw abortedError(name, signal);
      const attempt = await this.#acquire(name, ttlMs);
      if ('lease' in attempt) {
        if (!signal?.aborted) return attempt.lease;
        // Aborted while the winning attempt was in flight: the caller asked for nothing.
        await this.unlock(attempt.lease).catch(() => {});
        throw abortedError(name, signal);
      }
      // Jitter spreads contenders out. A lease about to lapse is looked at right after it does,
      // but never twice in a row: a backend that keeps saying "almost free" gets the backoff.
      const backoff = poll * (0.75 + Math.random() / 2);
      early = !early && attempt.retryInMs + 1 < backoff;
      const delay = early ? attempt.retryInMs + 1 : backoff;
      await releases.wait(this.lockId(name), delay, signal, this.#closing.signal);
      poll = Math.min(poll * 1.5, MAX_POLL_MS);
    }
  }

  async tryLock(name: string, options: Omit<LockOptions, 'signal'> = {}): Promise<LockLease | null> {
    this.#key(name);
    const attempt = await this.#acquire(name, leaseTtl(options.ttlMs));
    return 'lease' in attempt ? attempt.lease : null;
  }

  async renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    this.#lease(lease);
    const ttl = ttlMs === undefined ? undefined : leaseTtl(ttlMs);
    const what = `renewing lock ${quote(lease.name)}`;
    return this.io(what, { lock: lease.name, token: lease.token }, (s) => this.renew(lease, ttl, s));
  }

  async unlock(lease: LockLease): Promise<boolean> {
    this.#lease(lease);
    const what = `releasing lock ${quote(lease.name)}`;
    const released = await this.io(what, { lock: lease.name, token: lease.token }, (s) =>
      this.release(lease, s),
    );
    if (released) releases.notify(this.lockId(lease.name));
    return released;
  }

  async watch(prefix: string, listener: StoreChangeListener): Promise<() => void> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    assertEncodable(prefix);
    if (typeof listener !== 'function') throw optionError('listener', 'must be a function');
    if (!this.#subscription) {
      // One notification connection per store, set up by the first watch(); a failed attempt is
      // forgotten so the next watch() tries again.
      const attempt = this.io('subscribing to store changes', {}, (s) => this.subscribe(this.#hub, s));
      this.#subscription = attempt;
      attempt.catch(() => {
        if (this.#subscription === attempt) this.#subscription = undefined;
      });
    }
    await this.#subscription;
    this.#open();
    return this.#hub.add(prefix, listener);
  }

  /** Idempotent. Waiting `lock()` calls reject with `STORE_CLOSED`; watchers stop. */
  async close(): Promise<void> {
    if (!this.#shutdown) {
      this.#closing.abort();
      this.#hub.clear();
      this.#shutdown = this.shutdown().catch((err) => {
        this.logger.warn(`${this.#name}: error while closing`, {
          error: peerError(err, 'closing', {}).message,
        });
      });
    }
    await this.#shutdown;
  }

  /**
   * Rewrites every private key below `prefix` (default: all) that is unencrypted or sealed with a
   * key other than the writing key (`encryption.keys[0]`). Run after a rotation or when turning
   * encryption on for an existing store (with `acceptPlaintext` until it has run).
   */
  async reencrypt(prefix = ''): Promise<ReencryptResult> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    return reencrypt(
      this.#sealer,
      {
        list: (p) => this.list(p),
        get: (k) => this.io(`reading store key ${quote(k)}`, { key: k }, (s) => this.readValue(k, s)),
        put: (k, v) => this.io(`writing store key ${quote(k)}`, { key: k }, (s) => this.writeValue(k, v, s)),
      },
      prefix,
    );
  }

  // ---- for subclasses --------------------------------------------------------------------------

  protected get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Aborts when the store is closed: ends background reconnect loops. */
  protected get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** Runs one server operation under the deadline, mapping failures to `CertkeeperError`s. */
  protected async io<T>(
    what: string,
    details: Record<string, unknown>,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    this.#open();
    try {
      return await bounded(this.timeoutMs, what, run);
    } catch (err) {
      // Connections are torn down under in-flight calls on close; that is not an I/O error.
      if (this.closed) throw closedError(this.#name);
      throw peerError(err, what, details);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  async #acquire(name: string, ttlMs: number): Promise<LockAttempt> {
    return this.io(`acquiring lock ${quote(name)}`, { lock: name }, (s) => this.acquire(name, ttlMs, s));
  }

  #open(): void {
    if (this.closed) throw closedError(this.#name);
  }

  #key(key: string): void {
    this.#open();
    assertStoreKey(key);
    assertEncodable(key);
  }

  #fence(options: WriteOptions | undefined): LockLease | undefined {
    const fence = fenceOf(options);
    if (fence) this.#key(fence.name);
    return fence;
  }

  #lease(lease: LockLease): void {
    this.#open();
    if (lease === null || typeof lease !== 'object' || typeof lease.owner !== 'string') {
      throw optionError('lease', 'must be a lease returned by lock() or tryLock()');
    }
    this.#key(lease.name);
  }
}
