/**
 * Which managed certificate answers a TLS server name. Lookup order (RFC 6125 semantics):
 * the exact name, then the wildcard one label up (`x.a.com` → `*.a.com`), then the caller's
 * default. Both steps are single Map lookups, so the cost does not grow with the number of
 * certificates: the SNI path must stay as cheap as a static server's.
 */
import { canonicalIp } from '../crypto/names.js';

export class NameIndex {
  readonly #names = new Map<string, string>();
  readonly #byId = new Map<string, string[]>();

  /** Registers `id` for its names. A name already claimed by another id stays with the first. */
  add(id: string, names: readonly string[]): void {
    this.remove(id);
    const claimed: string[] = [];
    for (const name of names) {
      if (!this.#names.has(name)) {
        this.#names.set(name, id);
        claimed.push(name);
      }
    }
    this.#byId.set(id, claimed);
  }

  remove(id: string): void {
    for (const name of this.#byId.get(id) ?? []) {
      if (this.#names.get(name) === id) this.#names.delete(name);
    }
    this.#byId.delete(id);
  }

  /** The id for a server name as sent in SNI (any case, maybe with a trailing dot). */
  lookup(servername: string | undefined | null): string | undefined {
    if (!servername) return undefined;
    let name = servername.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const exact = this.#names.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = this.#names.get(`*${name.slice(dot)}`);
      if (wildcard !== undefined) return wildcard;
    }
    // Clients should not send IP literals in SNI, but some do.
    if (name.includes(':') || /^[\d.]+$/.test(name)) {
      const ip = canonicalIp(name);
      if (ip) return this.#names.get(ip);
    }
    return undefined;
  }

  get size(): number {
    return this.#names.size;
  }
}
