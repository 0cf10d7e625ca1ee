/**
 * Time, injectable. The scheduler, leases and validity checks read the clock through this
 * interface so tests can drive days of certificate lifetime in milliseconds with `FakeClock`
 * (from `certkeeper/testing`).
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers cap delays at 2^31-1 ms (~24.8 days); longer waits are chained. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real clock (`Date.now` and timers); the default wherever a `Clock` is accepted. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    // Background renewal must never keep a process alive on its own.
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
