/**
 * A repeating timer on the injected clock (the trust sources' and the trust store's polls), so a
 * test's FakeClock drives them like the rest of certkeeper. The system clock's timers are unref'd:
 * a poll never keeps a process alive on its own.
 */
import type { Clock } from '../clock.js';

/** Calls `fn` every `ms` until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let stopped = false;
  let handle: unknown;
  const arm = () => {
    handle = clock.setTimeout(() => {
      if (stopped) return;
      arm();
      fn();
    }, ms);
  };
  arm();
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}
