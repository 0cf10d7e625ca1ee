/**
 * A manual clock for tests of anything that takes a `Clock` (the manager, the scheduler):
 * time moves only when the test says so, and timers fire in due order as it moves.
 */
import type { Clock } from '../clock.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  #now: number;
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
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Number of armed timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the next timer fires, or undefined. */
  nextAt(): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers.values()) if (next === undefined || t.at < next) next = t.at;
    return next;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order with the clock set to each one's due
   * time, and letting promise callbacks run in between so async work started by a timer proceeds.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.values()]
        .filter((t) => t.at <= target)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers.delete(due.id);
      this.#now = Math.max(this.#now, due.at);
      due.callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = target;
  }

  /** Sets the time without firing anything (a host that slept). */
  set(time: number | Date): void {
    this.#now = typeof time === 'number' ? time : time.getTime();
  }
}
