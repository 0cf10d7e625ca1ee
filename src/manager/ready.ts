/**
 * `manager.ready()`: waiting until every (or each given) certificate is served — loaded from the
 * store, adopted from another replica, or obtained with its swap live-verified and announced —
 * and giving up, with the typed errors of the certificates not ready, when waiting can no longer
 * help or the caller says so:
 *   - the time limit (`timeoutMs`; default twice the attempt limit, so that one whole attempt and
 *     its first retry fit; `Infinity` waits without limit),
 *   - the caller's `signal`,
 *   - a certificate not ready whose attempt failed with an error retrying cannot fix
 *     (`isRetryable(error)` false: a spent enrollment token, …), also one that failed so before
 *     the call (during `start()`) with nothing changed since,
 *   - `stop()` (MANAGER_STOPPED, as every call on a stopped manager).
 * Giving up is about the wait only: the manager keeps trying on its schedule, and a later
 * `ready()` waits again.
 */
import type { EventEmitter } from 'eventemitter3';
import { CertkeeperError, isRetryable } from '../errors.js';
import type { ManagerEvents } from './events.js';
import type { ManagedCertificate } from './managed-certificate.js';
import { optionError } from './options.js';

export interface ReadyOptions {
  /** The certificates to wait for (default: all). */
  ids?: string[];
  /** Aborting it rejects the wait (NOT_READY, `details.reason` 'aborted'). */
  signal?: AbortSignal;
  /** Real milliseconds before the wait is rejected (NOT_READY, 'timeout'); `Infinity`: no limit. */
  timeoutMs?: number;
}

const READY_OPTIONS = ['ids', 'signal', 'timeoutMs'];

/** Validates `ready()`'s argument: ids (the older form) or options. */
export function readyOptions(
  input: unknown,
  defaultTimeoutMs: number,
): { ids?: string[]; signal?: AbortSignal; timeoutMs: number } {
  if (input === undefined) return { timeoutMs: defaultTimeoutMs };
  if (Array.isArray(input)) return { ids: idsOf(input), timeoutMs: defaultTimeoutMs };
  if (typeof input !== 'object' || input === null) throw optionError('ready', 'must be an options object');
  for (const key of Object.keys(input)) {
    if (!READY_OPTIONS.includes(key))
      throw optionError(`ready.${key}`, `is not an option (known: ${READY_OPTIONS.join(', ')})`);
  }
  const o = input as ReadyOptions;
  const timeoutMs = o.timeoutMs ?? defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0))
    throw optionError('ready.timeoutMs', 'must be a positive number of milliseconds (or Infinity)');
  if (o.signal !== undefined && !isSignal(o.signal))
    throw optionError('ready.signal', 'must be an AbortSignal');
  return {
    ...(o.ids !== undefined ? { ids: idsOf(o.ids) } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    timeoutMs,
  };
}

function idsOf(ids: unknown): string[] {
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))
    throw optionError('ready.ids', 'must be an array of certificate ids');
  return ids;
}

function isSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function'
  );
}

type Reason = 'timeout' | 'aborted' | 'not-retryable';

/** Resolves when every state is ready; rejects as the module comment says. */
export function waitReady(
  states: readonly ManagedCertificate[],
  events: EventEmitter<ManagerEvents>,
  stopped: AbortSignal,
  options: { signal?: AbortSignal; timeoutMs: number },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const undo: (() => void)[] = [];
    let settled = false;
    const finish = (error?: CertkeeperError) => {
      if (settled) return;
      settled = true;
      for (const fn of undo) fn();
      if (error) reject(error);
      else resolve();
    };
    const onStop = () => finish(new CertkeeperError('MANAGER_STOPPED', 'the manager has been stopped'));
    if (stopped.aborted) return onStop();
    if (options.signal?.aborted) return finish(notReady(states, 'aborted', options.timeoutMs));

    stopped.addEventListener('abort', onStop, { once: true });
    undo.push(() => stopped.removeEventListener('abort', onStop));
    const signal = options.signal;
    if (signal) {
      const onAbort = () => finish(notReady(states, 'aborted', options.timeoutMs));
      signal.addEventListener('abort', onAbort, { once: true });
      undo.push(() => signal.removeEventListener('abort', onAbort));
    }
    if (Number.isFinite(options.timeoutMs)) {
      const timer = setTimeout(
        () => finish(notReady(states, 'timeout', options.timeoutMs)),
        options.timeoutMs,
      );
      undo.push(() => clearTimeout(timer));
    }
    // Already failed for good before this call (during start(), say): waiting cannot help.
    if (states.some((s) => !s.isReady && s.plan.blocked))
      return finish(notReady(states, 'not-retryable', options.timeoutMs));
    const onFailure = ({ id, error }: ManagerEvents['renewalFailed'][0]) => {
      if (isRetryable(error)) return;
      if (states.some((s) => s.id === id && !s.isReady))
        finish(notReady(states, 'not-retryable', options.timeoutMs));
    };
    events.on('renewalFailed', onFailure);
    undo.push(() => events.off('renewalFailed', onFailure));
    void Promise.all(states.map((s) => s.readyPromise)).then(() => finish());
  });
}

/** NOT_READY naming each certificate not ready and its last typed error (null: none yet). */
function notReady(states: readonly ManagedCertificate[], reason: Reason, timeoutMs: number): CertkeeperError {
  const pending = states.filter((s) => !s.isReady);
  const why =
    reason === 'timeout'
      ? ` after ${timeoutMs} ms`
      : reason === 'aborted'
        ? ' (the wait was aborted)'
        : ' (a failure retrying cannot fix)';
  const list = pending.map((s) => `${s.id} (${s.plan.lastError?.code ?? 'no attempt finished yet'})`);
  const errors = Object.fromEntries(
    pending.flatMap((s) => (s.plan.lastError ? [[s.id, s.plan.lastError] as const] : [])),
  );
  return new CertkeeperError(
    'NOT_READY',
    `${pending.length} of ${states.length} certificates are not ready${why}: ${list.join(', ')}`,
    {
      cause: pending.find((s) => s.plan.lastError)?.plan.lastError,
      details: {
        reason,
        failed: Object.fromEntries(pending.map((s) => [s.id, s.plan.lastError?.code ?? null])),
        errors,
      },
    },
  );
}
