// A MemoryStore with `watch` (MemoryStore has none: one process needs no notifications), for
// in-process tests of what replicas do with change notifications. `down` makes subscribing fail.
import { CertkeeperError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { StoreChangeListener, WriteOptions } from '../../src/store/store.js';

/** A MemoryStore with `watch`, which fails while `down`. */
export class WatchedMemoryStore extends MemoryStore {
  down = false;
  attempts = 0;
  readonly #listeners = new Set<{ prefix: string; listener: StoreChangeListener }>();

  async watch(prefix: string, listener: StoreChangeListener): Promise<() => void> {
    this.attempts++;
    if (this.down) throw new CertkeeperError('STORE_IO', 'subscribing to store changes failed: ECONNREFUSED');
    const entry = { prefix, listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  override async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    await super.put(key, value, options);
    this.#changed(key);
  }

  override async delete(key: string, options?: WriteOptions): Promise<boolean> {
    const existed = await super.delete(key, options);
    if (existed) this.#changed(key);
    return existed;
  }

  #changed(key: string): void {
    for (const { prefix, listener } of this.#listeners) {
      if (key.startsWith(`${prefix}/`)) listener({ type: 'change', key });
    }
  }

  /** What a store reports after its notification connection came back. */
  resync(): void {
    for (const { listener } of this.#listeners) listener({ type: 'resync' });
  }

  get watchers(): number {
    return this.#listeners.size;
  }
}
