/**
 * TLS-ALPN-01 challenge certificates held in memory, by the server name the CA will send. The
 * ALPN callback that must answer with them is synchronous (protocols.md §1), so a challenge can
 * only be answered by a process that already holds its certificate in memory: the solver puts
 * it here (and in the store, for other replicas) before telling the CA to validate.
 */
import tls from 'node:tls';

export class AlpnChallengeRegistry {
  readonly #contexts = new Map<string, tls.SecureContext>();

  set(servername: string, credentials: { key: string; cert: string }): void {
    this.#contexts.set(servername.toLowerCase(), tls.createSecureContext(credentials));
  }

  delete(servername: string): void {
    this.#contexts.delete(servername.toLowerCase());
  }

  get(servername: string | undefined | null): tls.SecureContext | undefined {
    return servername ? this.#contexts.get(servername.toLowerCase()) : undefined;
  }

  get size(): number {
    return this.#contexts.size;
  }
}
