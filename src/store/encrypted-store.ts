/**
 * `EncryptedStore`: wraps any `Store` so that the values of sensitive keys (private keys, by
 * `layout.isSensitive`) are AES-256-GCM envelopes at rest (format and guarantees in
 * `./envelope.ts`). Everything else passes through unchanged: certificates are public, and
 * `list`, locks, fences and `watch` never see values.
 *
 * `RedisStore` and `PostgresStore` have the same encryption built in (their `encryption`
 * option); use this wrapper for any other store that several hosts share, such as a `FileStore`
 * on a network file system or a third-party store.
 *
 * ```ts
 * const store = new EncryptedStore(new FileStore({ directory: '/shared/certkeeper' }), {
 *   keys: [process.env.CERTKEEPER_KEY_2025!, process.env.CERTKEEPER_KEY_2024!], // first one writes
 * });
 * await store.reencrypt(); // after a rotation: rewrite what the old key sealed
 * ```
 */
import { optionError } from '../errors.js';
import { defaultLogger, type Logger } from '../logger.js';
import type { EncryptionOptions } from './envelope.js';
import { assertStoreKey } from './layout.js';
import { type ReencryptResult, reencrypt, Sealer } from './sealer.js';
import { toBytes } from './shared.js';
import type {
  LockLease,
  LockOptions,
  RecordSealing,
  Store,
  StoreChangeListener,
  StoreStat,
  WriteOptions,
} from './store.js';

/** Options of `EncryptedStore`. */
export interface EncryptedStoreOptions extends EncryptionOptions {
  /** Receives the warning when no key is configured. Default: console. */
  logger?: Logger;
}

/** Wraps any store and encrypts private keys and sealed records at rest (AES-256-GCM). */
export class EncryptedStore implements Store {
  readonly #inner: Store;
  readonly #sealer: Sealer;

  /** Sealed records with this store's keys (see `Store.sealing`); absent without a key. */
  readonly sealing?: RecordSealing;

  /** Present exactly when the wrapped store can watch: the capability is detected at the call site. */
  readonly watch?: (prefix: string, listener: StoreChangeListener) => Promise<() => void>;

  /** The wrapped store is owned: `close()` closes it. */
  constructor(inner: Store, options: EncryptedStoreOptions = {}) {
    if (inner === null || typeof inner !== 'object' || typeof inner.get !== 'function') {
      throw optionError('inner', 'must be the Store to wrap', 'EncryptedStore');
    }
    if (options === null || typeof options !== 'object') {
      throw optionError('options', 'of EncryptedStore must be an object');
    }
    const { logger = defaultLogger, ...encryption } = options;
    this.#inner = inner;
    this.#sealer = new Sealer(encryption, { owner: 'EncryptedStore', option: 'options', logger });
    if (this.#sealer.records) this.sealing = this.#sealer.records;
    if (typeof inner.watch === 'function') {
      const watch = inner.watch.bind(inner);
      this.watch = (prefix, listener) => watch(prefix, listener);
    }
  }

  async get(key: string): Promise<Uint8Array | null> {
    assertStoreKey(key);
    return this.#sealer.open(key, await this.#inner.get(key));
  }

  /** A fence is checked by the wrapped store, whose locks these are. */
  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    assertStoreKey(key);
    await this.#inner.put(key, this.#sealer.seal(key, toBytes(value)), options);
  }

  async delete(key: string, options?: WriteOptions): Promise<boolean> {
    return this.#inner.delete(key, options);
  }

  async list(prefix: string): Promise<string[]> {
    return this.#inner.list(prefix);
  }

  /** For encrypted values, `size` is the plaintext's, read from the envelope. */
  async stat(key: string): Promise<StoreStat | null> {
    assertStoreKey(key);
    const info = await this.#inner.stat(key);
    if (info === null || !this.#sealer.covers(key)) return info;
    const stored = await this.#inner.get(key);
    if (stored === null) return null; // deleted between the two reads
    return { key, size: this.#sealer.plainSize(key, stored), modified: info.modified };
  }

  lock(name: string, options?: LockOptions): Promise<LockLease> {
    return this.#inner.lock(name, options);
  }

  tryLock(name: string, options?: Omit<LockOptions, 'signal'>): Promise<LockLease | null> {
    return this.#inner.tryLock(name, options);
  }

  renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    return this.#inner.renewLock(lease, ttlMs);
  }

  unlock(lease: LockLease): Promise<boolean> {
    return this.#inner.unlock(lease);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /**
   * Rewrites every sensitive value below `prefix` (default: all) that is plaintext or sealed with
   * a key other than the writing key. Run it after adding a new first key, then drop the old one.
   */
  reencrypt(prefix = ''): Promise<ReencryptResult> {
    assertStoreKey(prefix, { allowEmpty: true });
    const inner = this.#inner;
    return reencrypt(
      this.#sealer,
      { list: (p) => inner.list(p), get: (k) => inner.get(k), put: (k, v) => inner.put(k, v) },
      prefix,
    );
  }
}
