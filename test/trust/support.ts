// Helpers for trust tests: a source whose answer the test sets, and bounded waits on TrustStore
// events (a missing event fails with its name instead of hanging).
import type { TrustSource } from '../../src/trust/source.js';
import type { TrustStore, TrustStoreEvents } from '../../src/trust/trust-store.js';

/** A source answering `pems` (or throwing `failure`); `changed()` plays a watch notification. */
export class MutableSource implements TrustSource {
  pems: string[];
  failure: Error | null = null;
  loads = 0;
  #listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    pems: string[],
  ) {
    this.pems = pems;
  }

  async load(): Promise<string[]> {
    this.loads++;
    if (this.failure) throw this.failure;
    return [...this.pems];
  }

  watch(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    return () => this.#listeners.delete(onChange);
  }

  changed(): void {
    for (const listener of this.#listeners) listener();
  }
}

export function nextTrustEvent<K extends keyof TrustStoreEvents>(
  store: TrustStore,
  name: K,
  timeoutMs = 10_000,
): Promise<TrustStoreEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      store.off(name, listener as never);
      reject(new Error(`no "${String(name)}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: TrustStoreEvents[K][0]) => {
      clearTimeout(timer);
      store.off(name, listener as never);
      resolve(payload);
    };
    store.on(name, listener as never);
  });
}
