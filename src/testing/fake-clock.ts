/**
 * A manual clock for tests of anything that takes a `Clock` (the manager, the scheduler):
 * time moves only when the test says so, and timers fire in due order as it moves.
 *
 * It keeps the two clocks a process really has apart, as Node does: `now()` is the wall clock,
 * and timers count the time the process ran (Node's timers follow a monotonic clock). `advance`
 * moves both; `set` moves only the wall clock, as an NTP step or a host resumed from suspend
 * does, and no timer fires or moves because of it.
 */
import type { Clock } from '../clock.js';

interface Timer {
  id: number;
  /** Due, in process time. */
  at: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  /** Process time: what timers count. */
  #elapsed = 0;
  #nextId = 1;
  readonly #timers = new Map<number, Timer>();

  // Starts at the real time by default, so certificates it dates are accepted by real TLS peers.
  constructor(start: number | Date = Date.now()) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { id, at: this.#elapsed + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Wall time at which the next timer fires if the wall clock does not jump, or undefined. */
  nextAt(): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers.values()) if (next === undefined || t.at < next) next = t.at;
    return next === undefined ? undefined : this.#now + (next - this.#elapsed);
  }

  /**
   * Lets `ms` of process time pass (the wall clock moves with it), firing due timers in order
   * with the clock set to each one's due time, and letting promise callbacks run in between so
   * async work started by a timer proceeds.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#elapsed + ms;
    for (;;) {
      let due: Timer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= target && (!due || t.at < due.at || (t.at === due.at && t.id < due.id))) due = t;
      }
      if (!due) break;
      this.#timers.delete(due.id);
      if (due.at > this.#elapsed) {
        this.#now += due.at - this.#elapsed;
        this.#elapsed = due.at;
      }
      due.callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now += target - this.#elapsed;
    this.#elapsed = target;
  }

  /**
   * Sets the wall clock without firing anything: an NTP step, or a host that slept (`set(now +
   * hours)`). Timers count process time, so they neither fire nor move: whatever was due at the
   * new time is noticed only by code that reads `now()` again.
   */
  set(time: number | Date): void {
    this.#now = typeof time === 'number' ? time : time.getTime();
  }
}
