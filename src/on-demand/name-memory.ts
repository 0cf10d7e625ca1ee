/**
 * Bounded memories of names: those denied (so a flood of one name costs one decision, not one per
 * connection) and those whose order failed (so a failing name cannot order again on every
 * connection: it waits a backoff that doubles with each failure in a row). Both are capped; the
 * oldest entry goes first, so a flood of random names cannot grow them.
 */

interface Remembered<T> {
  until: number;
  value: T;
}

/** Name → value until a time; at most `max` names, the least recently set dropped first. */
export class ExpiringNames<T> {
  readonly #entries = new Map<string, Remembered<T>>();
  constructor(readonly max: number) {}

  get(name: string, now: number): T | undefined {
    const hit = this.#entries.get(name);
    if (!hit) return undefined;
    if (hit.until <= now) {
      this.#entries.delete(name);
      return undefined;
    }
    return hit.value;
  }

  until(name: string, now: number): number | undefined {
    return this.get(name, now) === undefined ? undefined : this.#entries.get(name)!.until;
  }

  set(name: string, value: T, until: number): void {
    this.#entries.delete(name);
    this.#entries.set(name, { until, value });
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  delete(name: string): void {
    this.#entries.delete(name);
  }

  get size(): number {
    return this.#entries.size;
  }
}

export interface FailureRecord {
  /** Failures in a row. */
  count: number;
  code: string;
}

/** Failed names and the backoff before their next order. */
export class FailureBackoff {
  readonly #names: ExpiringNames<FailureRecord>;
  /** Failures in a row, kept past the backoff so the next failure waits longer (bounded too). */
  readonly #streaks: ExpiringNames<number>;

  constructor(
    max: number,
    readonly firstMs: number,
    readonly maxMs: number,
  ) {
    this.#names = new ExpiringNames(max);
    this.#streaks = new ExpiringNames(max);
  }

  /** The failure a name is still backing off from, with when it may order again. */
  blocked(name: string, now: number): (FailureRecord & { retryAt: number }) | undefined {
    const record = this.#names.get(name, now);
    return record && { ...record, retryAt: this.#names.until(name, now)! };
  }

  /** Records a failure; returns when the name may order again. */
  failed(name: string, code: string, now: number): number {
    const count = (this.#streaks.get(name, now) ?? 0) + 1;
    const wait = Math.min(this.maxMs, this.firstMs * 2 ** Math.min(count - 1, 40));
    this.#names.set(name, { count, code }, now + wait);
    // The streak outlives the backoff by the longest wait: a name failing again soon after waits longer.
    this.#streaks.set(name, count, now + wait + this.maxMs);
    return now + wait;
  }

  succeeded(name: string): void {
    this.#names.delete(name);
    this.#streaks.delete(name);
  }

  get size(): number {
    return this.#names.size;
  }
}
