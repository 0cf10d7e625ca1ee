/**
 * Which managed certificate answers a TLS server name. Lookup order (RFC 6125 semantics):
 * the exact name, then the wildcard one label up (`x.a.com` → `*.a.com`), then the caller's
 * default. Both steps are single Map lookups, so the cost does not grow with the number of
 * certificates: the SNI path must stay as cheap as a static server's.
 */
import { canonicalIp } from '../crypto/names.js';

/** The canonical IP a client sent, or null (a zone id is no address a certificate names). */
function ipOf(name: string): string | null {
  try {
    return canonicalIp(name);
  } catch {
    return null;
  }
}

export class NameIndex {
  readonly #names = new Map<string, string>();
  /** Every id's names as registered, in registration order: the claimants of a released name. */
  readonly #byId = new Map<string, readonly string[]>();

  /**
   * Registers `id` for its names (again: replaces its names, keeping its place). A name already
   * claimed by another id stays with the first.
   */
  add(id: string, names: readonly string[]): void {
    const previous = this.#byId.get(id) ?? [];
    this.#byId.set(id, [...names]);
    for (const name of previous) if (!names.includes(name)) this.#release(name, id);
    for (const name of names) {
      if (!this.#names.has(name)) this.#names.set(name, id);
    }
  }

  /** Unregisters `id`; each name it held passes to the next id registered for it, if any. */
  remove(id: string): void {
    const names = this.#byId.get(id);
    if (!names) return;
    this.#byId.delete(id);
    for (const name of names) this.#release(name, id);
  }

  #release(name: string, id: string): void {
    if (this.#names.get(name) !== id) return;
    this.#names.delete(name);
    for (const [other, wanted] of this.#byId) {
      if (wanted.includes(name)) {
        this.#names.set(name, other);
        return;
      }
    }
  }

  /**
   * The id for a server name as sent in SNI (any case, maybe with a trailing dot). Anything that
   * is not a name a certificate can carry (an IPv6 zone id such as `fe80::1%eth0`, a non-string)
   * is an unknown name: this runs inside the SNI callback, where a throw fails the handshake.
   */
  lookup(servername: string | undefined | null): string | undefined {
    if (typeof servername !== 'string' || servername.length === 0) return undefined;
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
      const ip = ipOf(name);
      if (ip) return this.#names.get(ip);
    }
    return undefined;
  }

  get size(): number {
    return this.#names.size;
  }
}
