/**
 * `withLock`: hold a store lock for the duration of some async work, renewing the lease so long
 * work does not lose it, and releasing it however the work ends.
 */
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import { leaseTtl } from './shared.js';
import type { LockLease, Store } from './store.js';

/** Options of `withLock`. */
export interface WithLockOptions {
  /** Lease duration; renewed every third of it while `fn` runs. Default 30 000. */
  ttlMs?: number;
  /** Cancels waiting for the lock (rejects with `LOCK_ABORTED`) and is passed on to `fn`. */
  signal?: AbortSignal;
  /**
   * Receives an unlock error after `fn` succeeded, instead of it being thrown: for work whose
   * success must stand (a certificate already deployed) when the store fails only at the release.
   */
  onReleaseError?: (error: unknown) => void;
}

/**
 * Acquires `name`, runs `fn`, releases. `fn` receives the lease (its `token` is the fencing
 * token) and a signal that aborts when the lease is lost (renewal failed with `LOCK_LOST`, or
 * kept failing until the lease lapsed) or when `options.signal` aborts. The work should stop
 * when it fires: another holder may already be doing the same work.
 *
 * As the `Store` contract says, re-check inside `fn` whether the work is still needed.
 *
 * `fn`'s error wins over an unlock error; if `fn` succeeds, an unlock error is thrown, or given to
 * `onReleaseError` (the lease then lapses by itself after its TTL).
 */
export async function withLock<T>(
  store: Store,
  name: string,
  fn: (lease: LockLease, signal: AbortSignal) => Promise<T>,
  options: WithLockOptions = {},
): Promise<T> {
  const ttlMs = leaseTtl(options.ttlMs);
  const outer = options.signal;
  let lease = await store.lock(name, { ttlMs, signal: outer });

  const controller = new AbortController();
  const forward = () => controller.abort(outer?.reason);
  if (outer?.aborted) forward();
  else outer?.addEventListener('abort', forward, { once: true });

  let stopped = false;
  let renewTimer: NodeJS.Timeout | undefined;
  let lapseTimer: NodeJS.Timeout | undefined;
  let renewing: Promise<void> = Promise.resolve();

  const lost = (cause: unknown) => {
    if (stopped) return;
    stopped = true;
    clearTimeout(renewTimer);
    clearTimeout(lapseTimer);
    controller.abort(cause);
  };
  // Measured locally from before each successful renewal was requested, so it errs early. It
  // also covers a renewal that hangs instead of failing.
  const armLapse = (delay: number) => {
    clearTimeout(lapseTimer);
    lapseTimer = setTimeout(
      () =>
        lost(
          new CertkeeperError('LOCK_LOST', `lock "${name}" lapsed: renewals did not succeed in time`, {
            details: { lock: name, token: lease.token },
          }),
        ),
      Math.max(0, delay),
    );
    lapseTimer.unref();
  };

  const renew = async () => {
    const requested = performance.now();
    try {
      lease = await store.renewLock(lease, ttlMs);
      armLapse(requested + ttlMs - performance.now());
    } catch (err) {
      // Anything but LOCK_LOST (I/O, a timeout) is retried at the next tick; the lapse timer
      // gives up when the lease runs out.
      if (isCertkeeperError(err, 'LOCK_LOST')) lost(err);
    }
  };

  const schedule = () => {
    if (stopped) return;
    renewTimer = setTimeout(() => {
      renewing = renew().then(schedule);
    }, ttlMs / 3);
    // The work itself keeps the process alive; lease upkeep should not.
    renewTimer.unref();
  };
  // The lease was stamped inside lock(); trust its expiry when it is plausible for this clock.
  const left = lease.expiresAt - Date.now();
  armLapse(left > 0 && left <= ttlMs ? left : ttlMs);
  schedule();

  const release = async () => {
    stopped = true;
    clearTimeout(renewTimer);
    clearTimeout(lapseTimer);
    outer?.removeEventListener('abort', forward);
    // A renewal still in flight would rewrite the lease after we release it; let it finish first.
    await renewing;
    clearTimeout(lapseTimer);
    await store.unlock(lease);
  };

  let result: T;
  try {
    result = await fn(lease, controller.signal);
  } catch (err) {
    await release().catch(() => {});
    throw err;
  }
  if (options.onReleaseError) await release().catch(options.onReleaseError);
  else await release();
  return result;
}
