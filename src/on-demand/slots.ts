/**
 * The bound on concurrent orders: a counting semaphore whose waiting line is bounded too, so a
 * burst of new names queues up to `queued` orders and refuses the rest at once instead of holding
 * connections open without limit. A waiter whose handshake gives up (its signal aborts) leaves the
 * line without taking a slot.
 */

export class OrderSlots {
  #running = 0;
  #peak = 0;
  readonly #line: Array<{ grant: () => void }> = [];

  constructor(
    readonly max: number,
    readonly queued: number,
  ) {}

  /**
   * Resolves to a release function once a slot is free; resolves to null when the line is full
   * or `signal` aborted first.
   */
  acquire(signal: AbortSignal): Promise<(() => void) | null> {
    if (signal.aborted) return Promise.resolve(null);
    if (this.#running < this.max) return Promise.resolve(this.#take());
    if (this.#line.length >= this.queued) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', leave);
          resolve(this.#take());
        },
      };
      const leave = () => {
        const at = this.#line.indexOf(waiter);
        if (at >= 0) this.#line.splice(at, 1);
        resolve(null);
      };
      signal.addEventListener('abort', leave, { once: true });
      this.#line.push(waiter);
    });
  }

  #take(): () => void {
    this.#running++;
    this.#peak = Math.max(this.#peak, this.#running);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      this.#line.shift()?.grant();
    };
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#line.length;
  }

  /** The most orders that ran at once since this object was made. */
  get peak(): number {
    return this.#peak;
  }
}
