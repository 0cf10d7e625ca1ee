/**
 * When each on-demand certificate was last served, so that those nobody uses any more are removed
 * from memory and from the store after `forgetAfterMs`. Every replica writes the time it served a
 * name to the store's seen-record, at most once per `forgetAfterMs / 10` (capped at a day) per
 * name, never on the handshake's path (the write is not awaited). The sweep removes a certificate
 * only under its order lock and only after re-reading the record, so it never removes one that
 * another replica is ordering or has just served.
 */
import type { OnDemandEvents } from './events.js';
import type { OnDemandHost } from './host.js';
import { onDemandKeys } from './keys.js';
import type { CertificateMemory, MemoryEntry } from './memory.js';
import type { ResolvedOnDemandOptions } from './options.js';

/** Seen-record writes in flight at once; beyond that a touch waits for a later handshake. */
const MAX_PENDING_WRITES = 64;
const DAY = 86_400_000;

export class SeenRecords {
  readonly #pending = new Set<Promise<void>>();
  readonly #intervalMs: number;

  constructor(
    private readonly host: OnDemandHost,
    private readonly options: ResolvedOnDemandOptions,
    private readonly memory: CertificateMemory,
    private readonly events: OnDemandEvents,
  ) {
    this.#intervalMs = Math.min(options.forgetAfterMs / 10, DAY);
  }

  /** Records that `entry` was served now, in the store when the last write is old enough. */
  touch(name: string, entry: MemoryEntry): void {
    const now = entry.lastSeen;
    if (now - entry.seenStoredAt < this.#intervalMs || this.#pending.size >= MAX_PENDING_WRITES) return;
    entry.seenStoredAt = now;
    const write = this.host.store
      .put(onDemandKeys.seen(name), JSON.stringify({ at: now }))
      .catch((error) => {
        entry.seenStoredAt = 0;
        this.host.logger.warn('on-demand seen-record write failed', { name, error: String(error) });
      })
      .finally(() => this.#pending.delete(write));
    this.#pending.add(write);
  }

  /** Settles once the writes started so far are done. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  async sweep(signal: AbortSignal): Promise<{ memory: number; store: number }> {
    const cutoff = this.host.clock.now() - this.options.forgetAfterMs;
    let memory = 0;
    for (const [name, entry] of [...this.memory.entries()]) {
      if (entry.lastSeen < cutoff && this.memory.delete(name)) memory++;
    }
    let store = 0;
    for (const key of await this.host.store.list(onDemandKeys.seenDir)) {
      if (signal.aborted) break;
      const name = onDemandKeys.nameOfSeen(key);
      if (name === null) continue;
      const held = this.memory.get(name);
      if (held && held.lastSeen >= cutoff) continue;
      if (await this.#forget(name, cutoff)) store++;
    }
    return { memory, store };
  }

  /** Removes `name` when its record is still older than `cutoff`, under its lock (never waits for it). */
  async #forget(name: string, cutoff: number): Promise<boolean> {
    const { store } = this.host;
    if (!this.#older(await store.get(onDemandKeys.seen(name)), cutoff)) return false;
    const lease = await store.tryLock(onDemandKeys.orderLock(name), { ttlMs: this.options.lockTtlMs });
    if (!lease) return false;
    try {
      // Re-read under the lock: another replica may have served it since.
      if (!this.#older(await store.get(onDemandKeys.seen(name)), cutoff)) return false;
      await this.host.remove(name, lease);
      await store.delete(onDemandKeys.seen(name), { fence: lease });
      this.memory.delete(name);
      this.events.emit({ type: 'forgotten', name });
      return true;
    } finally {
      await store.unlock(lease).catch(() => {});
    }
  }

  /** Whether a seen-record says "last served before `cutoff`". A damaged record is kept, never acted on. */
  #older(raw: Uint8Array | null, cutoff: number): boolean {
    if (!raw) return false;
    try {
      const at = JSON.parse(Buffer.from(raw).toString('utf8'))?.at;
      return typeof at === 'number' && at < cutoff;
    } catch {
      return false;
    }
  }
}
