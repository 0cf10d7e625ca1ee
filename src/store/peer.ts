/**
 * Plumbing shared by the stores that talk to a server (Redis, PostgreSQL): loading the optional
 * driver, bounding every call in time, and turning driver errors into `CertkeeperError`s that
 * carry no values. Internal: not exported from the package.
 */
import { CertkeeperError, describeCause, type ErrorCode, optionError } from '../errors.js';

export const DEFAULT_TIMEOUT_MS = 5_000;

export function positiveMs(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 2_147_483_647) {
    throw optionError(
      option,
      `must be a positive number of milliseconds (at most 2^31-1), got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Loads an optional peer dependency on first use. A dynamic `import()` (a lazy `require` in the
 * CJS build) keeps `import 'certkeeper'` working where the driver is not installed.
 */
export async function loadPeer<T>(
  name: 'ioredis' | 'pg' | 'undici' | '@grpc/grpc-js',
  owner: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      `${owner} needs the optional peer dependency "${name}": npm install ${name} (${describeCause(err)})`,
      { cause: err, details: { dependency: name } },
    );
  }
}

/**
 * Runs `run` with a deadline. On timeout the returned promise rejects with `STORE_IO` and the
 * signal passed to `run` aborts, so waits inside it stop. The operation itself may still reach
 * the server later, as with any network timeout: its outcome is unknown, and the message says so.
 */
export async function bounded<T>(
  ms: number,
  what: string,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new CertkeeperError('STORE_IO', `${what} timed out after ${ms} ms (outcome unknown)`, {
        details: { timeoutMs: ms },
      });
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([run(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Driver messages that mean "the server refuses writes" or "it is out of memory / disk". */
function codeOf(err: unknown): ErrorCode {
  const message = err instanceof Error ? err.message : '';
  const sqlState = (err as { code?: unknown })?.code;
  if (sqlState === '53100' || sqlState === '53200' || /^OOM\b/.test(message)) return 'STORE_NO_SPACE';
  if (sqlState === '25006' || /^READONLY\b/.test(message)) return 'STORE_READ_ONLY';
  if (/^WRONGTYPE\b/.test(message) || sqlState === '22021') return 'STORE_CORRUPT';
  return 'STORE_IO';
}

/**
 * A driver error as a `CertkeeperError`. The original is not kept as `cause`: ioredis errors
 * carry the command's arguments (the value being written) and PostgreSQL errors may quote a row,
 * so the cause is a fresh Error with the driver's message and code only.
 */
export function peerError(err: unknown, what: string, details: Record<string, unknown>): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const code = (err as { code?: unknown })?.code;
  const cause = new Error(describeCause(err));
  if (typeof code === 'string') Object.assign(cause, { code });
  return new CertkeeperError(codeOf(err), `${what} failed: ${describeCause(err)}`, {
    cause,
    details: { ...details, ...(typeof code === 'string' ? { driverCode: code } : {}) },
  });
}

// A lone UTF-16 surrogate cannot be encoded as UTF-8: drivers would replace it with U+FFFD, so
// two different keys could land on one server key.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Keys bound for a server must survive UTF-8 encoding unchanged. */
export function assertEncodable(key: string): void {
  if (LONE_SURROGATE.test(key)) {
    throw new CertkeeperError(
      'INVALID_STORE_KEY',
      `invalid store key ${JSON.stringify(key)}: not valid Unicode`,
      {
        details: { reason: 'lone surrogate' },
      },
    );
  }
}

/** Epoch milliseconds of a lease that started (locally) at `startedAt`: errs early, never late. */
export function leaseExpiry(startedAt: number, ttlMs: number): number {
  return startedAt + ttlMs;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
