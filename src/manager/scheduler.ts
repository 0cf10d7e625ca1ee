/**
 * One timer for all certificates. Due times live in a binary min-heap with lazy invalidation:
 * rescheduling pushes a new entry and bumps a version, stale entries are dropped when they
 * surface. The single timer is armed for the earliest entry only, so 10,000 certificates cost
 * one pending timer, and each reschedule is O(log n).
 *
 * Due times are wall-clock times, but Node's timers count the time the process ran (a monotonic
 * clock): after a host suspend or an NTP step forward, a timer armed for "in 16 hours" still
 * waits 16 hours of running time although the renewal, or the expiry, has already come. So the
 * timer never sleeps long: at most an eighth of the time left to the earliest entry, at most
 * `WALL_CLOCK_CHECK_MS`, and each wake reads the wall clock again and runs whatever became due.
 * A jump is noticed within a minute of running time; the cost is one cheap wake a minute.
 */
import { type Clock, MAX_TIMER_MS } from '../clock.js';

/** The longest the timer sleeps before the wall clock is read again. */
export const WALL_CLOCK_CHECK_MS = 60_000;
/** Sleeps shorter than this are not split further. */
const MIN_CHECK_MS = 1_000;

interface Entry {
  at: number;
  id: string;
  version: number;
}

export type Job = (id: string) => Promise<void>;

export class Scheduler {
  readonly #clock: Clock;
  readonly #job: Job;
  readonly #concurrency: number;
  readonly #heap: Entry[] = [];
  readonly #current = new Map<string, { at: number; version: number }>();
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  #running = 0;
  #timer: unknown;
  #armedAt = Number.POSITIVE_INFINITY;
  #version = 0;
  #stopped = true;
  readonly #idle = new Set<() => void>();

  constructor(clock: Clock, job: Job, { concurrency = 4 }: { concurrency?: number } = {}) {
    this.#clock = clock;
    this.#job = job;
    this.#concurrency = concurrency;
  }

  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  /**
   * Schedules (or reschedules) `id` at epoch ms `at`; the earlier of two calls does not win, the
   * last does. A time that is not a finite number is "now".
   */
  set(id: string, at: number): void {
    if (!Number.isFinite(at)) at = this.#clock.now();
    const version = ++this.#version;
    this.#current.set(id, { at, version });
    this.#push({ at, id, version });
    this.#arm();
  }

  delete(id: string): void {
    this.#current.delete(id);
    this.#arm();
  }

  /** When `id` is next due, if scheduled. */
  dueAt(id: string): number | undefined {
    return this.#current.get(id)?.at;
  }

  /** Resolves when no job is queued or running (for orderly shutdown and tests). */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  #arm(): void {
    if (this.#stopped) return;
    const top = this.#peek();
    const at = top?.at ?? Number.POSITIVE_INFINITY;
    if (at === this.#armedAt) return;
    this.#disarm();
    if (!top) return;
    this.#armedAt = at;
    const left = Math.max(0, Math.ceil(at - this.#clock.now()));
    const check = Math.min(WALL_CLOCK_CHECK_MS, Math.max(MIN_CHECK_MS, Math.ceil(left / 8)));
    const delay = Math.min(left, check, MAX_TIMER_MS);
    this.#timer = this.#clock.setTimeout(() => this.#wake(), delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #wake(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    if (this.#stopped) return;
    const now = this.#clock.now();
    for (let top = this.#peek(); top && top.at <= now; top = this.#peek()) {
      this.#pop();
      this.#current.delete(top.id);
      if (!this.#queued.has(top.id)) {
        this.#queued.add(top.id);
        this.#queue.push(top.id);
      }
    }
    this.#drain();
    this.#arm();
  }

  #drain(): void {
    while (!this.#stopped && this.#running < this.#concurrency && this.#queue.length > 0) {
      const id = this.#queue.shift()!;
      this.#queued.delete(id);
      this.#running++;
      // The job reports its own errors and reschedules itself; a throw here is a bug, but it
      // must not stop the loop for every other certificate.
      this.#job(id)
        .catch(() => {})
        .finally(() => {
          this.#running--;
          this.#drain();
          if (this.#running === 0 && this.#queue.length === 0) {
            for (const resolve of this.#idle) resolve();
            this.#idle.clear();
          }
        });
    }
  }

  /** The earliest live entry, dropping stale ones. */
  #peek(): Entry | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      const live = this.#current.get(top.id);
      if (live && live.version === top.version) return top;
      this.#pop();
    }
    return undefined;
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      if (heap[child]!.at >= last.at) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
