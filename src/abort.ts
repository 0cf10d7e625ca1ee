/**
 * Waiting on code that may ignore an AbortSignal: issuers and DNS providers are user code, and
 * a provider API that never answers must not hold a renewal attempt (and `stop()`) forever.
 */

/**
 * Settles as `work` does, or rejects with `onAbort()` as soon as `signal` fires. The work itself
 * cannot be cancelled from here; its late outcome is dropped (a late rejection gets a handler, so
 * it is not reported as unhandled).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      work.catch(() => {});
      reject(onAbort());
    };
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
