/**
 * SecureContexts, one per certificate generation and option set, built once and reused.
 * `tls.createSecureContext` costs ~1–2 ms of CPU and ~20 KiB per context (protocols.md §1), so
 * it must never run per handshake, and with thousands of certificates contexts are built lazily
 * on the first handshake that needs them and evicted least-recently-used beyond a bound.
 */
import type tls from 'node:tls';

export class ContextCache {
  readonly #max: number;
  // A Map iterates in insertion order; re-inserting on hit makes it an LRU.
  readonly #entries = new Map<string, tls.SecureContext>();

  constructor(max = 1000) {
    this.#max = max;
  }

  get(key: string): tls.SecureContext | undefined {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, hit);
    }
    return hit;
  }

  getOrCreate(key: string, build: () => tls.SecureContext): tls.SecureContext {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const context = build();
    this.#entries.set(key, context);
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return context;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}
