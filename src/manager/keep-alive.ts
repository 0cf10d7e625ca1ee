/**
 * Keeping the Node process alive on purpose. The manager's own timers are unref'd (background
 * work must not keep a process alive by accident); these holds are the deliberate exceptions:
 * the `keepAlive` option while the manager runs, and a caller waiting on the manager (ready(),
 * renewNow(), stop()), which is foreground work even if the work itself waits on nothing ref'd.
 */

/** One ref'd handle, held or not. */
export class ProcessHold {
  #timer: NodeJS.Timeout | undefined;

  set(held: boolean): void {
    if (held && !this.#timer) this.#timer = setInterval(() => {}, 2 ** 30);
    else if (!held && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** Keeps the process alive until `work` settles (the caller is waiting for it). */
export async function foreground<T>(work: Promise<T>): Promise<T> {
  const hold = new ProcessHold();
  hold.set(true);
  try {
    return await work;
  } finally {
    hold.set(false);
  }
}

/** Resolves when `work` settles or after `ms`, whichever comes first; true when `work` settled. */
export function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    work.then(done, done);
  });
}
