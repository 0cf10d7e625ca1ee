/**
 * The TrustSource contract: where trust anchors come from. A `TrustStore` combines any number of
 * sources into one `TrustBundle`; each source only has to say what it currently holds.
 *
 * Contract:
 * - `name` identifies the source in events and errors; unique within one store.
 * - `load(signal)` resolves with PEM texts (each may hold several certificates). It is called at
 *   start-up, on `refresh()` and after `watch` reports a change; calls never overlap for one
 *   source (the store serialises them). It may reject (unreachable, unreadable, garbage): the
 *   store then keeps the source's last good contribution and emits `sourceFailed`. It must stop
 *   promptly when `signal` aborts. An empty array is a valid answer ("this source trusts
 *   nothing now"); the store refuses a combined bundle that ends up empty.
 * - `watch(onChange)` (optional) calls `onChange` when the source may have changed (a file was
 *   replaced, a CA rotated); spurious calls are fine, the store re-loads and compares
 *   fingerprints. Returns the function that stops watching. Sources without `watch` change only
 *   on `refresh()` (or the store's poll interval).
 * - Sources hold only public certificates: nothing a source returns or throws may carry key
 *   material.
 */
export interface TrustSource {
  readonly name: string;
  load(signal: AbortSignal): Promise<string[]>;
  watch?(onChange: () => void): () => void;
}

/** Explicit PEM texts (a fixed CA list, or certificates handed over by code). */
export function pemSource(name: string, pems: readonly string[]): TrustSource {
  const fixed = [...pems];
  return { name, load: async () => fixed };
}
