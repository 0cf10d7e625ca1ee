/**
 * The embedded CA as a trust source: its published roots (the issuing root, and during a root
 * rotation the next or previous one), read from the CA's sealed state record only. This process's
 * rotation steps are reported at once; other replicas sharing the store are seen through the
 * store's watch (a commit of the CA's state) where it has one, else on the trust store's
 * `refresh()` or poll.
 */
import type { InternalCA } from '../issuers/internal-ca.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type { TrustSource } from './source.js';

/** Options of `InternalCaTrustSource`. */
export interface InternalCaTrustSourceOptions {
  /**
   * The CA's store, when the CA was given none and is not used by a manager (a manager's
   * `start()` gives the CA its store).
   */
  store?: Store;
  name?: string;
}

export class InternalCaTrustSource implements TrustSource {
  readonly name: string;
  readonly ca: InternalCA;
  readonly #store: Store | undefined;

  constructor(ca: InternalCA, options: InternalCaTrustSourceOptions = {}) {
    this.ca = ca;
    this.#store = options.store;
    this.name = options.name ?? `internal-ca:${ca.name}`;
  }

  load(_signal: AbortSignal): Promise<string[]> {
    return this.ca.publishedRoots(this.#store);
  }

  watch(onChange: () => void): () => void {
    const stopLocal = this.ca.onAnchorsChanged(onChange);
    let stopStore: (() => void) | undefined;
    let stopped = false;
    const store = this.#store ?? this.ca.store;
    if (store?.watch) {
      const state = layout.ca(this.ca.name, 'state.key');
      store
        .watch(layout.caDir(this.ca.name), (change) => {
          if (change.type === 'resync' || change.key === state) onChange();
        })
        .then(
          (stop) => {
            if (stopped) stop();
            else stopStore = stop;
          },
          () => {},
        );
    }
    return () => {
      stopped = true;
      stopLocal();
      stopStore?.();
    };
  }
}
