/**
 * The storage contract. Every certificate, key, account and challenge answer certkeeper keeps
 * goes through this interface, so a fleet shares state by sharing a store. Implementations:
 * `MemoryStore`, `FileStore` (the default), and the Redis / PostgreSQL stores. Run
 * `runStoreConformance` from `certkeeper/testing` against any implementation to prove it keeps
 * this contract.
 *
 * ## Keys
 * A key is a relative path of `/`-separated segments, e.g. `certificates/internal/a.example/cert.pem`.
 * Segments are non-empty, never `.` or `..`, contain no NUL or control characters and no `\`,
 * and a key has no leading or trailing `/`. Build keys with `./layout.ts`; stores re-check every
 * key with `assertStoreKey` and throw `INVALID_STORE_KEY` for anything else. Keys are
 * case-sensitive.
 *
 * ## Values
 * Values are opaque bytes. `put` of a string stores its UTF-8 encoding.
 *
 * ## Not found
 * `get` and `stat` return `null` when the key does not exist. They throw only for real failures
 * (I/O errors, corruption the store itself can detect, a closed store), always a
 * `CertkeeperError`. "Not found" is never an exception, so callers cannot confuse a missing
 * certificate with an unreadable one.
 *
 * ## Atomicity
 * `put` is atomic per key: a concurrent reader sees the complete old value or the complete new
 * value, never a mix or a truncation. A failed `put` (no space, read-only, crash) leaves the
 * previous value intact: the last good value is never destroyed by a failed write.
 * There are no multi-key transactions; writers that need several keys to agree take a lock.
 *
 * ## Listing
 * `list(prefix)` returns every key (at any depth) below the prefix, where the prefix is matched
 * segment-wise: `list('certs/a')` includes `certs/a/x` but never `certs/ab/x`. An empty prefix
 * lists everything. Order is unspecified. A key created or deleted during a listing may or may
 * not appear.
 *
 * ## Locks
 * Locks coordinate processes (replicas) that share a store, so that one certificate is never
 * ordered twice. A lock is a *lease*: it is held until released or until `ttlMs` passes without
 * renewal; after that anyone may take it over. A holder doing long work must call `renewLock`
 * well inside the TTL (`withLock` does this for you).
 *
 * Each successful acquisition carries a fencing `token` that is strictly greater than every token
 * previously issued for that lock name in this store. A holder that stalled (GC pause, stopped
 * VM) past its lease may still believe it holds the lock: the writes that matter are *fenced*
 * (next section), so that such a holder's late write is refused instead of landing.
 *
 * **Why a holder must re-check state after acquiring:** the lock only says "nobody else is
 * working on this now". While you waited, the previous holder may already have done the work
 * (e.g. another replica obtained the certificate and stored it). Always re-read the state after
 * `lock()` returns and skip the work if it is no longer needed; otherwise a fleet of N replicas
 * orders the same certificate N times, one after another.
 *
 * `lock` waits until the lock is free or its lease lapses, and rejects with `LOCK_ABORTED` when
 * the signal aborts. `tryLock` never waits. `unlock` of a lease that was already taken over is a
 * no-op that returns `false`: it never releases somebody else's lock. `renewLock` of such a lease
 * throws `LOCK_LOST`.
 *
 * ## Fenced writes
 * `put(key, value, { fence: lease })` and `delete(key, { fence: lease })` write only while `lease`
 * is still the current lease of its lock: the same acquisition (name, `token` and `owner`, as
 * `lock`, `tryLock` or `renewLock` returned it), not released, not lapsed. Otherwise they reject
 * with `LOCK_LOST` and change nothing. The check and the write are one step in every store:
 * nobody can acquire the lock between them, so once the next holder has the lock, a write fenced
 * by an earlier lease can no longer land, however long its writer stalled. The next holder, who
 * re-reads after acquiring, therefore sees every fenced write of the holders before it, and none
 * of theirs can overwrite its own. This is what makes a commit under a lock safe against a holder
 * whose lease lapsed without it noticing; the local abort signal of `withLock` only narrows that
 * window, a fenced write closes it.
 *
 * The store does not know which keys a lock protects: the caller fences the writes that commit
 * (certkeeper fences the pointer that makes a certificate generation current, under the
 * certificate's issuance lock). Unfenced writes are not checked against any lock. A store that
 * wraps another must pass `options` on to it: one that drops them turns fenced writes into
 * unfenced ones without a word (the conformance suite catches that).
 *
 * How each store does it: `MemoryStore` checks and writes in one synchronous step; `RedisStore` in
 * one Lua script; `PostgresStore` in one statement that takes a share lock on the lock's row, which
 * a takeover must wait for (and a write waiting on a takeover re-checks and finds it lost);
 * `FileStore` writes through a directory that belongs to the lease and that the next holder
 * removes before its acquisition returns, so the write's final rename fails once it is gone
 * (details in `./file-lock.ts`). Whether a lease has lapsed is judged on the server's clock
 * (Redis, PostgreSQL) or the writer's (memory, file); takeover is what the one-step check guards,
 * and it is exact everywhere.
 *
 * ## Change notification (optional capability)
 * A store shared by several replicas may implement `watch`, so that a replica learns within about
 * a second that another one stored a certificate. It is optional: `MemoryStore` and `FileStore`
 * do not have it, and callers detect it at the call site (`if (store.watch) ...`).
 *
 * `watch(prefix, listener)` resolves once the subscription is live (or rejects with a
 * `CertkeeperError`, e.g. `STORE_IO`, when it cannot be set up within the store's timeout). From
 * then on every `put`, and every `delete` of an existing key, below `prefix` (segment-wise, as in
 * `list`; `''` watches everything), made through any client of the same backend (this one
 * included), is reported as `{ type: 'change', key }` once it has committed. The event carries the
 * key only, never the value nor what happened to it: re-read the key.
 *
 * Notifications are hints, not a log: delivered at most once, and lost while the store's
 * notification connection is down. The store reconnects by itself; once it listens again it
 * sends every listener `{ type: 'resync' }`, meaning "changes may have been missed: re-read what
 * you care about". Callers still reconcile periodically; a notification saves waiting for the
 * next pass, it does not replace it.
 *
 * The resolved function stops the listener (idempotent); `close()` stops all of them. Listeners
 * are called synchronously from the store's I/O callbacks: keep them short and hand real work to
 * a queue. An exception thrown by a listener is logged and does not affect other listeners.
 *
 * ## Sealed records (optional capability)
 * A store that holds encryption keys (`RedisStore` / `PostgresStore` with keys, `EncryptedStore`,
 * a `CachedStore` whose primary has it) offers `sealing`: authenticated, versioned records for
 * values that become trust or decide what is served, so that whoever can write the store without
 * the key cannot forge, move or roll them back (details on `RecordSealing`). Stores without keys
 * have no `sealing`; callers detect it at the call site and decide what an unauthenticated value
 * may still be used for.
 */

export interface StoreStat {
  key: string;
  /** Size of the stored value in bytes. */
  size: number;
  /** Last modification time. */
  modified: Date;
}

/** Options of `Store.lock`. */
export interface LockOptions {
  /** Lease duration in milliseconds. Default 30 000. */
  ttlMs?: number;
  /** Cancels a waiting `lock()`; it rejects with `LOCK_ABORTED`. */
  signal?: AbortSignal;
}

/** A held lock. Treat as opaque apart from the documented fields. */
export interface LockLease {
  readonly name: string;
  /** Fencing token: strictly increasing per lock name across all holders of this store. */
  readonly token: number;
  /** Random identity of this acquisition. */
  readonly owner: string;
  /** Epoch milliseconds at which the lease lapses unless renewed. */
  readonly expiresAt: number;
}

/** Options of a write (`put`, `delete`). */
export interface WriteOptions {
  /**
   * Write only while this lease is the current lease of its lock (see "Fenced writes" above);
   * otherwise reject with `LOCK_LOST` and write nothing.
   */
  fence?: LockLease;
}

/** What `Store.watch` reports: a key that changed, or a gap after which everything should be re-read. */
export type StoreChange = { readonly type: 'change'; readonly key: string } | { readonly type: 'resync' };

/** Receives the changes a `Store.watch` reports. */
export type StoreChangeListener = (change: StoreChange) => void;

/** What `RecordSealing.open` returns: the value and the version it was sealed at. */
export interface SealedRecord {
  readonly value: Uint8Array;
  readonly version: number;
}

/**
 * Seals values with the store's encryption key so that they are bound to their store key and to a
 * version (AES-256-GCM; key and version are associated data). Pure functions of bytes: store the
 * result with `put(key, …)` and read it with `get(key)`, so it travels through any wrapper
 * (`CachedStore` keeps it in its local copy as it is).
 *
 * ```ts
 * const sealing = store.sealing; // undefined: the store has no key
 * await store.put(key, sealing.seal(key, JSON.stringify(list), list.version));
 * const record = sealing.open(key, await store.get(key), { atLeast: lastKnownVersion }); // or null
 * ```
 *
 * Versions are the caller's: a non-negative safe integer that grows with every change of the
 * value (a generation counter, a CRL number). `open` refuses, with `STORE_CORRUPT` and
 * `details.reason`: `not-sealed` (plaintext, or written without the key), `decrypt-failed`
 * (altered, or copied from another store key), `unknown-key`, `malformed`, and `replayed`: a
 * version below `options.atLeast` or below the highest version this store object has sealed or
 * opened for that key. The latter is memory: a process that starts after an older record was put
 * back cannot tell, unless the caller passes a floor it knows from elsewhere.
 */
export interface RecordSealing {
  seal(key: string, value: Uint8Array | string, version: number): Uint8Array;
  open(key: string, stored: Uint8Array | null, options?: { atLeast?: number }): SealedRecord | null;
}

/** The storage contract every store keeps (described at the top of this file; `runStoreConformance` checks it). */
export interface Store {
  get(key: string): Promise<Uint8Array | null>;
  /** With `options.fence`, a fenced write (see "Fenced writes" above). */
  put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void>;
  /**
   * Returns whether the key existed. Deleting a missing key is not an error. With
   * `options.fence`, a fenced write (see "Fenced writes" above).
   */
  delete(key: string, options?: WriteOptions): Promise<boolean>;
  list(prefix: string): Promise<string[]>;
  stat(key: string): Promise<StoreStat | null>;

  lock(name: string, options?: LockOptions): Promise<LockLease>;
  tryLock(name: string, options?: Omit<LockOptions, 'signal'>): Promise<LockLease | null>;
  /** Extends the lease to `ttlMs` from now (default: the TTL it was taken with). */
  renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease>;
  unlock(lease: LockLease): Promise<boolean>;

  /** Releases resources (connections, watchers). Further calls reject with `STORE_CLOSED`. */
  close(): Promise<void>;

  /**
   * OPTIONAL (see "Change notification" above). Resolves, once subscribed, to a function that
   * stops this listener.
   */
  watch?(prefix: string, listener: StoreChangeListener): Promise<() => void>;

  /** OPTIONAL (see "Sealed records" above): present when the store holds an encryption key. */
  readonly sealing?: RecordSealing;
}

/** Lease duration of a lock when none is given. */
export const DEFAULT_LOCK_TTL_MS = 30_000;
