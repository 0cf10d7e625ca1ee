/**
 * The on-demand certificates held in memory: at most `max`, the least recently served forgotten
 * first (the store still has them; the next handshake for that name loads it again). Each entry
 * holds the certificate, its ready TLS context and what the upkeep needs.
 */
import type { SecureContext } from 'node:tls';
import type { OnDemandCertificate } from './host.js';

export interface MemoryEntry {
  readonly certificate: OnDemandCertificate;
  readonly context: SecureContext;
  /** From this time on the next handshake starts a renewal (a third of the lifetime left). */
  readonly renewAt: number;
  readonly notAfter: number;
  /** Last time a handshake was served this entry. */
  lastSeen: number;
  /** Last time that was written to the store's seen-record. */
  seenStoredAt: number;
}

export class CertificateMemory {
  readonly #entries = new Map<string, MemoryEntry>();
  evictions = 0;

  constructor(readonly max: number) {}

  /** The entry for `name`, made most recently used. */
  get(name: string): MemoryEntry | undefined {
    const hit = this.#entries.get(name);
    if (hit) {
      this.#entries.delete(name);
      this.#entries.set(name, hit);
    }
    return hit;
  }

  set(name: string, entry: MemoryEntry): void {
    this.#entries.delete(name);
    this.#entries.set(name, entry);
    while (this.#entries.size > this.max) {
      this.#entries.delete(this.#entries.keys().next().value as string);
      this.evictions++;
    }
  }

  delete(name: string): boolean {
    return this.#entries.delete(name);
  }

  entries(): IterableIterator<[string, MemoryEntry]> {
    return this.#entries.entries();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** A third of the lifetime left, as certmagic and the manager's default renew. */
export function renewAtOf(certificate: OnDemandCertificate): number {
  const from = certificate.info.notBefore.getTime();
  const to = certificate.info.notAfter.getTime();
  return from + ((to - from) * 2) / 3;
}
