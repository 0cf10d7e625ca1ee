/**
 * TLS-ALPN-01 challenge certificates held in memory, by the server name the CA will send. The
 * ALPN callback that must answer with them is synchronous, so a challenge can only be answered by
 * a process that already holds its certificate in memory: the solver puts it here (and in the
 * store, for other replicas) before telling the CA to validate.
 *
 * Only genuine challenge certificates get in (`checkAlpnChallenge`: what a replica loads comes
 * from a store others can write), only their key and certificate reach `createSecureContext`, and
 * each is dropped once its certificate expires.
 *
 * It also knows the servers that answer from it, so an order does not ask the CA to validate
 * TLS-ALPN-01 while none of them listens (the README's start-up order creates the server after
 * the first certificate), and can go again as soon as one does.
 */
import tls from 'node:tls';
import type { Replicas } from './acks.js';
import { checkAlpnChallenge } from './record.js';

/**
 * What a manager gives TLS-ALPN-01 solvers through the order's context (`ChallengeContext`):
 * the registry its attached servers answer from, and the replicas that must hold a challenge
 * before the CA is asked to validate (absent: no replica shares the store with change
 * notifications).
 */
export interface TlsAlpnHost {
  readonly registry: AlpnChallengeRegistry;
  readonly replicas?: Replicas;
}

interface Held {
  context: tls.SecureContext;
  notAfter: number;
  /** The challenge certificate (PEM): whose challenge this is. */
  cert: string;
}

export class AlpnChallengeRegistry {
  readonly #contexts = new Map<string, Held>();
  readonly #servers = new Set<tls.Server>();
  readonly #onListening = new Set<() => void>();

  /** A server answering TLS-ALPN-01 from this registry; returns the function that forgets it. */
  addServer(server: tls.Server): () => void {
    const listening = () => {
      for (const listener of this.#onListening) listener();
    };
    this.#servers.add(server);
    server.on('listening', listening);
    if (server.listening) queueMicrotask(listening);
    return () => {
      this.#servers.delete(server);
      server.off('listening', listening);
    };
  }

  /** Whether a server answering from this registry listens: a validation can reach it. */
  get answering(): boolean {
    for (const server of this.#servers) if (server.listening) return true;
    return false;
  }

  /** Calls `listener` whenever such a server starts listening; returns the function that stops it. */
  onListening(listener: () => void): () => void {
    this.#onListening.add(listener);
    return () => this.#onListening.delete(listener);
  }

  /**
   * Holds the challenge `credentials` (`{ key, cert }` PEM) for `servername`. Throws
   * `CHALLENGE_RECORD_INVALID` unless they are an RFC 8737 challenge certificate for exactly that
   * name, valid now, and its key.
   */
  set(servername: string, credentials: unknown, now = Date.now()): void {
    const name = servername.toLowerCase();
    const challenge = checkAlpnChallenge(name, credentials, now);
    const context = tls.createSecureContext({ key: challenge.key, cert: challenge.cert });
    this.#contexts.set(name, { context, notAfter: challenge.notAfter, cert: challenge.cert });
  }

  /** Drops the challenge for `servername`; with `cert`, only when it is that challenge. */
  delete(servername: string, cert?: string): void {
    const name = servername.toLowerCase();
    if (cert !== undefined && this.#contexts.get(name)?.cert !== cert) return;
    this.#contexts.delete(name);
  }

  get(servername: string | undefined | null): tls.SecureContext | undefined {
    if (!servername) return undefined;
    const name = servername.toLowerCase();
    const held = this.#contexts.get(name);
    if (held && held.notAfter <= Date.now()) {
      this.#contexts.delete(name);
      return undefined;
    }
    return held?.context;
  }

  get size(): number {
    return this.#contexts.size;
  }
}
