/**
 * Pieces every store implementation needs: value copying, lease TTL validation, the typed errors
 * for closed stores and locks, and a wake-up registry for waiting `lock()` calls. Internal: not
 * exported from the package.
 */
import { CertkeeperError, optionError } from '../errors.js';
import { DEFAULT_LOCK_TTL_MS, type LockLease, type WriteOptions } from './store.js';

const encoder = new TextEncoder();

/** A private copy of a value, so a caller mutating its buffer later cannot reach the store. */
export function toBytes(value: Uint8Array | string): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  // `new Uint8Array(x)` copies; `Buffer#slice` would only make a view.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw optionError('value', 'must be a Uint8Array or a string (a store value)');
}

/** Validates a lease TTL; `undefined` means the contract's default. */
export function leaseTtl(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return DEFAULT_LOCK_TTL_MS;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw optionError('ttlMs', `must be a positive number of milliseconds, got ${ttlMs}`);
  }
  return ttlMs;
}

export function closedError(store: string): CertkeeperError {
  return new CertkeeperError('STORE_CLOSED', `${store} is closed`);
}

export function abortedError(name: string, signal: AbortSignal): CertkeeperError {
  return new CertkeeperError('LOCK_ABORTED', `waiting for lock "${name}" was aborted`, {
    cause: signal.reason,
    details: { lock: name },
  });
}

export function lockLostError(name: string, token: number, why: string): CertkeeperError {
  return new CertkeeperError('LOCK_LOST', `lock "${name}" (token ${token}) is no longer held: ${why}`, {
    details: { lock: name, token },
  });
}

/**
 * The fence of a write's options, checked for shape (the store checks it is current): `undefined`
 * for an unfenced write. Anything but a lease is `INVALID_OPTION` (option `fence`).
 */
export function fenceOf(options: WriteOptions | undefined): LockLease | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw optionError('options', 'must be an object', 'write');
  }
  const { fence } = options;
  if (fence === undefined) return undefined;
  const lease = fence as Partial<LockLease> | null;
  if (
    lease === null ||
    typeof lease !== 'object' ||
    typeof lease.name !== 'string' ||
    typeof lease.owner !== 'string' ||
    typeof lease.token !== 'number' ||
    !Number.isSafeInteger(lease.token)
  ) {
    throw optionError('fence', 'must be a lease returned by lock() or tryLock()', 'write');
  }
  return fence;
}

/** A fenced write refused: its lease is no longer the current one of its lock. Nothing was written. */
export function fencedOut(fence: LockLease, key: string): CertkeeperError {
  return new CertkeeperError(
    'LOCK_LOST',
    `lock "${fence.name}" (token ${fence.token}) is no longer held: the fenced write of store key ${JSON.stringify(key)} was refused`,
    { details: { lock: fence.name, token: fence.token, key } },
  );
}

/**
 * Wakes waiting `lock()` calls when a lock is released in this process, so a waiter does not sit
 * out a poll interval. Waits always end by timeout too: a release in another process or a lapsing
 * lease sends no notification.
 */
export class Waiters {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves on `notify(key)`, after `ms`, or when any of `signals` aborts, whichever comes first. */
  wait(key: string, ms: number, ...signals: (AbortSignal | undefined)[]): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(key);
      if (!set) {
        set = new Set();
        this.#waiting.set(key, set);
      }
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        for (const signal of signals) signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiting.get(key) === waiters) this.#waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      waiters.add(done);
      for (const signal of signals) {
        if (signal?.aborted) return done();
        signal?.addEventListener('abort', done, { once: true });
      }
    });
  }

  notify(key: string): void {
    for (const wake of [...(this.#waiting.get(key) ?? [])]) wake();
  }

  notifyAll(): void {
    for (const key of [...this.#waiting.keys()]) this.notify(key);
  }
}
