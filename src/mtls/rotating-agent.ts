/**
 * An `https.Agent` whose client certificate rotates with the manager.
 *
 * A shared Agent cannot be rotated in place (protocols.md §2): it keys its socket pools and TLS
 * session cache by `key/cert/ca`, not by a SecureContext, so a pooled keep-alive socket or a
 * resumed session would keep presenting the old identity. Instead this facade keeps one real
 * Agent per generation (client certificate serial × trust bundle version) and hands each request
 * to the newest. An older Agent is retired gracefully:
 *   - its idle sockets are destroyed at once (no new request can pick them up);
 *   - its busy sockets finish their request and are then closed (`keepAlive` off);
 *   - after `graceMs` it is destroyed, whatever is left.
 * Each Agent has its own session cache, so no TLS session crosses generations.
 */
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { CertkeeperError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { ClientIdentity, type ClientIdentityOptions } from './generations.js';

export interface RotatingAgentOptions extends ClientIdentityOptions {
  /** Options of every underlying Agent (keepAlive, maxSockets, timeout, servername, …). */
  agentOptions?: Omit<https.AgentOptions, 'key' | 'cert' | 'ca' | 'pfx' | 'passphrase'>;
  /** How long a retired Agent may finish in-flight requests before it is destroyed. Default 30 s. */
  graceMs?: number;
}

interface Generation {
  key: string;
  serial: string;
  agent: https.Agent;
}

/** Node's Agent API used by `http.ClientRequest` (stable since Node 0.x, not in the typings). */
interface AgentInternals {
  addRequest(req: unknown, options: unknown): void;
  sockets: Record<string, Duplex[] | undefined>;
  freeSockets: Record<string, Duplex[] | undefined>;
  keepAlive: boolean;
}

interface Retired {
  /** Resolves once the Agent is destroyed. */
  drained: Promise<void>;
  /** Destroys the Agent now (idempotent). */
  finish(): void;
}

export class RotatingAgent extends https.Agent {
  readonly identity: ClientIdentity;
  readonly #agentOptions: https.AgentOptions;
  readonly #graceMs: number;
  readonly #retired = new Set<Retired>();
  readonly #stopWatching: () => void;
  #current: Generation | undefined;
  #closed = false;

  constructor(manager: CertificateManager, id: string, options: RotatingAgentOptions = {}) {
    super({ keepAlive: options.agentOptions?.keepAlive ?? true });
    const graceMs = options.graceMs ?? 30_000;
    if (!(Number.isFinite(graceMs) && graceMs >= 0)) {
      throw new CertkeeperError('INVALID_OPTION', 'RotatingAgent option graceMs must be a number >= 0');
    }
    this.identity = new ClientIdentity(manager, id, options);
    this.#agentOptions = { keepAlive: true, ...(options.agentOptions ?? {}) };
    this.#graceMs = graceMs;
    // Rotate as soon as the identity changes, so idle sockets of the old one close now rather
    // than at the next request. This runs inside the manager's event emission: a failure here
    // (e.g. a trust bundle Node refuses) must not reach the manager; the next request reports it.
    this.#stopWatching = this.identity.onChange(() => {
      if (this.#closed || !this.identity.manager.certificate(this.identity.id)) return;
      try {
        this.#agent();
      } catch {
        // reported by the next addRequest
      }
    });
  }

  /** The serial presented by new connections, and the number of generations still alive. */
  stats(): { serial: string | undefined; generations: number } {
    return { serial: this.#current?.serial, generations: (this.#current ? 1 : 0) + this.#retired.size };
  }

  // Called by http.ClientRequest for every request made with `agent: this`.
  addRequest(req: unknown, options: unknown): void {
    if (this.#closed) {
      refuse(req, new CertkeeperError('AGENT_CLOSED', 'the rotating agent is closed'));
      return;
    }
    let agent: https.Agent;
    try {
      agent = this.#agent();
    } catch (error) {
      refuse(req, error as Error);
      return;
    }
    (agent as unknown as AgentInternals).addRequest(req, options);
  }

  /**
   * Refuses new requests (AGENT_CLOSED) and retires every generation as a rotation does: idle
   * sockets close now, in-flight requests finish, whatever remains after `graceMs` is destroyed.
   * Resolves when every underlying Agent is destroyed. Idempotent.
   */
  async close(): Promise<void> {
    this.#stop();
    await Promise.all([...this.#retired].map((r) => r.drained));
  }

  /** Destroys every underlying Agent and their sockets at once (in-flight requests fail). Idempotent. */
  override destroy(): void {
    this.#stop();
    for (const retired of [...this.#retired]) retired.finish();
    super.destroy();
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatching();
    const current = this.#current;
    this.#current = undefined;
    if (current) this.#retire(current.agent);
  }

  #agent(): https.Agent {
    const generation = this.identity.current();
    if (this.#current?.key === generation.key) return this.#current.agent;
    const agent = new https.Agent({
      ...this.#agentOptions,
      key: generation.privateKey.toPem(),
      cert: generation.chainPem,
      ...(generation.ca ? { ca: generation.ca } : {}),
    });
    const previous = this.#current;
    this.#current = { key: generation.key, serial: generation.serial, agent };
    if (previous) this.#retire(previous.agent);
    return agent;
  }

  #retire(agent: https.Agent): void {
    const internals = agent as unknown as AgentInternals;
    // A socket freed after its request is now destroyed rather than pooled (Agent's 'free'
    // handler reads `this.keepAlive`); a request already queued on this Agent still gets it.
    internals.keepAlive = false;
    for (const list of Object.values(internals.freeSockets))
      for (const socket of list ?? []) socket.destroy();
    const busy = () => Object.values(internals.sockets).some((list) => (list?.length ?? 0) > 0);
    if (!busy()) {
      agent.destroy();
      return;
    }
    // Destroyed once its last busy socket is gone (checked every 100 ms: Agent emits nothing
    // when a socket leaves its pool), at the latest after the grace period.
    const deadline = Date.now() + this.#graceMs;
    let resolve!: () => void;
    const entry: Retired = {
      drained: new Promise<void>((r) => {
        resolve = r;
      }),
      finish: () => {
        clearInterval(timer);
        agent.destroy();
        this.#retired.delete(entry);
        resolve();
      },
    };
    const timer = setInterval(() => {
      if (!busy() || Date.now() >= deadline) entry.finish();
    }, 100);
    timer.unref();
    this.#retired.add(entry);
  }
}

/**
 * Fails a request that gets no socket, as Agent does when it cannot create one: the request
 * emits 'error' then 'close'. (`req.destroy(error)` before a socket is assigned emits nothing,
 * so the caller would wait forever.)
 */
function refuse(req: unknown, error: Error): void {
  (req as { onSocket(socket: null, error: Error): void }).onSocket(null, error);
}

/** An `https.Agent` that always presents the newest certificate of client certificate `id`. */
export function createRotatingAgent(
  manager: CertificateManager,
  id: string,
  options: RotatingAgentOptions = {},
): RotatingAgent {
  return new RotatingAgent(manager, id, options);
}
