/**
 * A shared store with a local copy. Replicas of a fleet share Redis or PostgreSQL, but a replica
 * restarting while that store is unreachable must still serve the certificate it had: reads go
 * to the primary and fall back to the local copy (a FileStore, typically) when the primary
 * fails; every value read from or written to the primary is mirrored locally.
 *
 * Only availability failures fall back (`STORE_IO`, `STORE_CLOSED`): a primary that answers is
 * the truth, including "not found". Locks, fences and `watch` are the primary's alone — a replica
 * that cannot reach the shared store must not believe it holds a fleet-wide lock. Private keys in the
 * local copy are protected like any FileStore file (0600 in 0700 directories); wrap the cache in
 * an EncryptedStore for more.
 */
import { createHash } from 'node:crypto';
import { describeCause, isCertkeeperError, optionError } from '../errors.js';
import { defaultLogger, type Logger } from '../logger.js';
import type {
  LockLease,
  LockOptions,
  RecordSealing,
  Store,
  StoreChangeListener,
  StoreStat,
  WriteOptions,
} from './store.js';

/** Options of `CachedStore`. */
export interface CachedStoreOptions {
  /** The shared store: the truth, and the only one that locks. */
  primary: Store;
  /** The local copy read when the primary is unreachable. */
  cache: Store;
  logger?: Logger;
}

/** Failures that mean "the primary is unreachable", not "the primary said no". */
function unavailable(error: unknown): boolean {
  return isCertkeeperError(error) && (error.code === 'STORE_IO' || error.code === 'STORE_CLOSED');
}

/** A shared store with a local copy, read when the shared store is unreachable. */
export class CachedStore implements Store {
  readonly #primary: Store;
  readonly #cache: Store;
  readonly #logger: Logger;
  #degraded = false;
  /** Digest of what the local copy holds per key, so unchanged values are not rewritten on every read. */
  readonly #mirrored = new Map<string, string>();
  readonly watch?: (prefix: string, listener: StoreChangeListener) => Promise<() => void>;
  /**
   * The primary's sealed records. Sealed values are bytes like any other, so the local copy
   * keeps them sealed, and reading them from it when the primary is down still authenticates.
   */
  readonly sealing?: RecordSealing;

  constructor(options: CachedStoreOptions) {
    for (const name of ['primary', 'cache'] as const) {
      const store = options?.[name] as unknown as Record<string, unknown> | undefined;
      if (!store || typeof store.get !== 'function' || typeof store.put !== 'function') {
        throw optionError(name, 'must be a Store', 'CachedStore');
      }
    }
    this.#primary = options.primary;
    this.#cache = options.cache;
    this.#logger = options.logger ?? defaultLogger;
    const watch = this.#primary.watch;
    if (watch) this.watch = (prefix, listener) => watch.call(this.#primary, prefix, listener);
    if (this.#primary.sealing) this.sealing = this.#primary.sealing;
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const value = await this.#primary.get(key);
      this.#recovered();
      await this.#mirror(key, value);
      return value;
    } catch (error) {
      if (!unavailable(error)) throw error;
      this.#fellBack(error);
      return this.#cache.get(key);
    }
  }

  /** A fence is checked by the primary, whose locks these are; the local copy follows what landed. */
  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    await this.#primary.put(key, value, options);
    this.#recovered();
    await this.#mirror(key, typeof value === 'string' ? new TextEncoder().encode(value) : value);
  }

  async delete(key: string, options?: WriteOptions): Promise<boolean> {
    const existed = await this.#primary.delete(key, options);
    this.#recovered();
    this.#mirrored.delete(key);
    await this.#cache.delete(key).catch(() => false);
    return existed;
  }

  async list(prefix: string): Promise<string[]> {
    try {
      const keys = await this.#primary.list(prefix);
      this.#recovered();
      return keys;
    } catch (error) {
      if (!unavailable(error)) throw error;
      this.#fellBack(error);
      return this.#cache.list(prefix);
    }
  }

  async stat(key: string): Promise<StoreStat | null> {
    try {
      const stat = await this.#primary.stat(key);
      this.#recovered();
      return stat;
    } catch (error) {
      if (!unavailable(error)) throw error;
      this.#fellBack(error);
      return this.#cache.stat(key);
    }
  }

  lock(name: string, options?: LockOptions): Promise<LockLease> {
    return this.#primary.lock(name, options);
  }

  tryLock(name: string, options?: Omit<LockOptions, 'signal'>): Promise<LockLease | null> {
    return this.#primary.tryLock(name, options);
  }

  renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    return this.#primary.renewLock(lease, ttlMs);
  }

  unlock(lease: LockLease): Promise<boolean> {
    return this.#primary.unlock(lease);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#primary.close(), this.#cache.close()]);
  }

  /** Keeps the local copy equal to what the primary said, best effort: the copy is a fallback. */
  async #mirror(key: string, value: Uint8Array | null): Promise<void> {
    const digest = value === null ? '' : createHash('sha256').update(value).digest('base64');
    if (this.#mirrored.get(key) === digest) return;
    try {
      if (value === null) await this.#cache.delete(key);
      else await this.#cache.put(key, value);
      this.#mirrored.set(key, digest);
    } catch (error) {
      this.#logger.debug('local copy not updated', { key, error: describeCause(error) });
    }
  }

  #fellBack(error: unknown): void {
    if (this.#degraded) return;
    this.#degraded = true;
    this.#logger.warn('shared store unreachable; reading the local copy', { error: describeCause(error) });
  }

  #recovered(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#logger.info('shared store reachable again');
  }
}
