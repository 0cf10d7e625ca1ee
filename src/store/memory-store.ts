/**
 * `MemoryStore`: the `Store` contract in one process's memory. For tests, single-instance
 * services and as the reference the conformance suite is checked against. Nothing survives a
 * restart and nothing is shared between processes, so its locks only coordinate callers inside
 * this process.
 */
import { randomUUID } from 'node:crypto';
import { optionError } from '../errors.js';
import { assertStoreKey, keyHasPrefix } from './layout.js';
import {
  abortedError,
  closedError,
  fencedOut,
  fenceOf,
  leaseTtl,
  lockLostError,
  toBytes,
  Waiters,
} from './shared.js';
import type { LockLease, LockOptions, Store, StoreStat, WriteOptions } from './store.js';

/** Options of `MemoryStore`. */
export interface MemoryStoreOptions {
  /**
   * Epoch milliseconds for lease expiry and `stat().modified`: a function or any object with
   * `now()` (such as `FakeClock`). Default `Date.now`.
   */
  clock?: (() => number) | { now(): number };
}

interface Entry {
  value: Uint8Array;
  modified: number;
}

interface Held {
  token: number;
  owner: string;
  expiresAt: number;
  ttlMs: number;
}

/** The longest a waiter sleeps between checks: bounds the delay when an injected clock jumps. */
const MAX_WAIT_MS = 250;

/** A store in the process's memory, for tests and single-process services that need nothing kept. */
export class MemoryStore implements Store {
  readonly #clock: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #held = new Map<string, Held>();
  /** Last token issued per lock name; kept after release so tokens never repeat. */
  readonly #tokens = new Map<string, number>();
  readonly #waiters = new Waiters();
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw optionError('options', 'of MemoryStore must be an object');
    }
    const { clock } = options;
    if (typeof clock === 'function') this.#clock = clock;
    else if (clock === undefined) this.#clock = Date.now;
    else if (typeof clock === 'object' && clock !== null && typeof clock.now === 'function') {
      this.#clock = () => clock.now();
    } else {
      throw optionError('clock', 'must be a function or an object with now()');
    }
  }

  async get(key: string): Promise<Uint8Array | null> {
    this.#open();
    const entry = this.#entries.get(assertStoreKey(key));
    return entry ? new Uint8Array(entry.value) : null;
  }

  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    this.#open();
    assertStoreKey(key);
    const fence = fenceOf(options);
    const entry = { value: toBytes(value), modified: this.#clock() };
    // Check and write in one synchronous step: nothing can take the lock in between.
    if (fence && !this.#holds(fence)) throw fencedOut(fence, key);
    this.#entries.set(key, entry);
  }

  async delete(key: string, options?: WriteOptions): Promise<boolean> {
    this.#open();
    assertStoreKey(key);
    const fence = fenceOf(options);
    if (fence && !this.#holds(fence)) throw fencedOut(fence, key);
    return this.#entries.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    return [...this.#entries.keys()].filter((key) => keyHasPrefix(key, prefix));
  }

  async stat(key: string): Promise<StoreStat | null> {
    this.#open();
    const entry = this.#entries.get(assertStoreKey(key));
    return entry ? { key, size: entry.value.byteLength, modified: new Date(entry.modified) } : null;
  }

  async lock(name: string, options: LockOptions = {}): Promise<LockLease> {
    this.#open();
    assertStoreKey(name);
    const ttlMs = leaseTtl(options.ttlMs);
    const { signal } = options;
    for (;;) {
      if (signal?.aborted) throw abortedError(name, signal);
      this.#open();
      const lease = this.#acquire(name, ttlMs);
      if (lease) return lease;
      const held = this.#held.get(name)!;
      // Woken by unlock/close; the timeout covers a lease that lapses without anyone releasing it.
      await this.#waiters.wait(name, Math.min(held.expiresAt - this.#clock() + 1, MAX_WAIT_MS), signal);
    }
  }

  async tryLock(name: string, options: Omit<LockOptions, 'signal'> = {}): Promise<LockLease | null> {
    this.#open();
    assertStoreKey(name);
    return this.#acquire(name, leaseTtl(options.ttlMs));
  }

  async renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    this.#open();
    const held = this.#held.get(lease.name);
    const now = this.#clock();
    if (!held || held.owner !== lease.owner || held.token !== lease.token) {
      throw lockLostError(lease.name, lease.token, 'released or taken over');
    }
    if (held.expiresAt <= now) throw lockLostError(lease.name, lease.token, 'lease lapsed');
    const ttl = ttlMs === undefined ? held.ttlMs : leaseTtl(ttlMs);
    held.expiresAt = now + ttl;
    held.ttlMs = ttl;
    return Object.freeze({
      name: lease.name,
      token: held.token,
      owner: held.owner,
      expiresAt: held.expiresAt,
    });
  }

  async unlock(lease: LockLease): Promise<boolean> {
    this.#open();
    const held = this.#held.get(lease.name);
    if (!held || held.owner !== lease.owner || held.token !== lease.token) return false;
    this.#held.delete(lease.name);
    this.#waiters.notify(lease.name);
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    // Waiting lock() calls wake up and reject with STORE_CLOSED.
    this.#waiters.notifyAll();
  }

  /** Whether `lease` is the current, unlapsed lease of its lock. */
  #holds(lease: LockLease): boolean {
    const held = this.#held.get(lease.name);
    return (
      held !== undefined &&
      held.owner === lease.owner &&
      held.token === lease.token &&
      held.expiresAt > this.#clock()
    );
  }

  #acquire(name: string, ttlMs: number): LockLease | null {
    const now = this.#clock();
    const held = this.#held.get(name);
    if (held && held.expiresAt > now) return null;
    const token = (this.#tokens.get(name) ?? 0) + 1;
    this.#tokens.set(name, token);
    const owner = randomUUID();
    this.#held.set(name, { token, owner, expiresAt: now + ttlMs, ttlMs });
    return Object.freeze({ name, token, owner, expiresAt: now + ttlMs });
  }

  #open(): void {
    if (this.#closed) throw closedError('MemoryStore');
  }
}
