/**
 * The listener side of `Store.watch` (see "Change notification" in `store.ts`), shared by the
 * stores that implement it. A store keeps one notification connection whatever the number of
 * listeners and feeds every message into a `WatchHub`, which filters by prefix and isolates
 * listeners from each other. Internal: not exported from the package.
 */
import { describeCause } from '../errors.js';
import type { Logger } from '../logger.js';
import { keyHasPrefix } from './layout.js';
import type { StoreChange, StoreChangeListener } from './store.js';

interface Watcher {
  prefix: string;
  listener: StoreChangeListener;
}

const RESYNC: StoreChange = Object.freeze({ type: 'resync' });

export class WatchHub {
  readonly #watchers = new Set<Watcher>();
  readonly #logger: Logger;
  readonly #owner: string;

  constructor(owner: string, logger: Logger) {
    this.#owner = owner;
    this.#logger = logger;
  }

  get size(): number {
    return this.#watchers.size;
  }

  /** Registers a listener; the returned function removes it and may be called any number of times. */
  add(prefix: string, listener: StoreChangeListener): () => void {
    const watcher: Watcher = { prefix, listener };
    this.#watchers.add(watcher);
    return () => {
      this.#watchers.delete(watcher);
    };
  }

  /** A key committed a change. Keys that do not parse as store keys cannot match any prefix. */
  change(key: string): void {
    const event: StoreChange = Object.freeze({ type: 'change', key });
    for (const watcher of [...this.#watchers]) {
      if (keyHasPrefix(key, watcher.prefix)) this.#deliver(watcher, event);
    }
  }

  /** Notifications may have been lost (the connection was down): everybody re-reads. */
  resync(): void {
    for (const watcher of [...this.#watchers]) this.#deliver(watcher, RESYNC);
  }

  clear(): void {
    this.#watchers.clear();
  }

  #deliver(watcher: Watcher, event: StoreChange): void {
    // Removed by an earlier listener in this same dispatch: it asked not to be called again.
    if (!this.#watchers.has(watcher)) return;
    try {
      watcher.listener(event);
    } catch (err) {
      // One broken listener must not starve the others, nor kill the connection's event handler.
      this.#logger.error(`${this.#owner}: a watch listener threw`, {
        event: event.type,
        error: describeCause(err),
      });
    }
  }
}
