/**
 * An `https.Agent` whose client certificate rotates with the manager.
 *
 * A shared Agent cannot be rotated in place: it keys its socket pools and TLS
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
import { optionError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { GenerationPool } from './generation-pool.js';
import { ClientIdentity, type ClientIdentityOptions, followIdentity } from './generations.js';

/** Options of `createRotatingAgent`. */
export interface RotatingAgentOptions extends ClientIdentityOptions {
  /** Options of every underlying Agent (keepAlive, maxSockets, timeout, servername, …). */
  agentOptions?: Omit<https.AgentOptions, 'key' | 'cert' | 'ca' | 'pfx' | 'passphrase'>;
  /** How long a retired Agent may finish in-flight requests before it is destroyed. Default 30 s. */
  graceMs?: number;
}

interface Generation {
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

/** An `https.Agent` that presents the current managed client certificate, one pool per certificate generation. */
export class RotatingAgent extends https.Agent {
  readonly identity: ClientIdentity;
  readonly #pool: GenerationPool<Generation>;
  readonly #current: () => Generation;

  constructor(manager: CertificateManager, id: string, options: RotatingAgentOptions = {}) {
    super({ keepAlive: options.agentOptions?.keepAlive ?? true });
    const graceMs = options.graceMs ?? 30_000;
    if (!(Number.isFinite(graceMs) && graceMs >= 0)) {
      throw optionError('graceMs', 'must be a number >= 0', 'RotatingAgent');
    }
    this.identity = new ClientIdentity(manager, id, options);
    const agentOptions: https.AgentOptions = { keepAlive: true, ...(options.agentOptions ?? {}) };
    this.#pool = new GenerationPool<Generation>({
      name: 'the rotating agent',
      graceMs,
      drain: ({ agent }, forced) => drain(agent, forced),
      destroy: ({ agent }) => agent.destroy(),
    });
    this.#current = followIdentity(this.identity, this.#pool, (generation) => ({
      serial: generation.serial,
      agent: new https.Agent({
        ...agentOptions,
        key: generation.privateKey.toPem(),
        cert: generation.chainPem,
        ...(generation.ca ? { ca: generation.ca } : {}),
      }),
    }));
  }

  /** The serial presented by new connections, and the number of generations still alive. */
  stats(): { serial: string | undefined; generations: number } {
    return { serial: this.#pool.current?.serial, generations: this.#pool.size };
  }

  // Called by http.ClientRequest for every request made with `agent: this`.
  addRequest(req: unknown, options: unknown): void {
    let agent: https.Agent;
    try {
      agent = this.#current().agent;
    } catch (error) {
      refuse(req, error as Error); // AGENT_CLOSED, CERTIFICATE_UNAVAILABLE, a CA Node refuses
      return;
    }
    (agent as unknown as AgentInternals).addRequest(req, options);
  }

  /**
   * Refuses new requests (AGENT_CLOSED) and retires every generation as a rotation does: idle
   * sockets close now, in-flight requests finish, whatever remains after `graceMs` is destroyed.
   * Resolves when every underlying Agent is destroyed. Idempotent.
   */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Destroys every underlying Agent and their sockets at once (in-flight requests fail). Idempotent. */
  override destroy(): void {
    void this.#pool.destroy();
    super.destroy();
  }
}

/**
 * Drains a retired Agent: its idle sockets are destroyed at once (no new request can pick them
 * up), its busy ones finish their request and are then closed rather than pooled (Agent's 'free'
 * handler reads `keepAlive`; a request already queued on it still gets a socket); once none is
 * left, the Agent is destroyed. Agent emits nothing when a socket leaves its pool, so this looks
 * every 100 ms.
 */
function drain(agent: https.Agent, forced: AbortSignal): Promise<void> {
  const internals = agent as unknown as AgentInternals;
  internals.keepAlive = false;
  for (const list of Object.values(internals.freeSockets)) for (const socket of list ?? []) socket.destroy();
  const busy = () => Object.values(internals.sockets).some((list) => (list?.length ?? 0) > 0);
  return new Promise<void>((resolve) => {
    const finish = () => {
      clearInterval(timer);
      forced.removeEventListener('abort', finish);
      if (!forced.aborted) agent.destroy();
      resolve();
    };
    const timer = setInterval(() => {
      if (!busy()) finish();
    }, 100);
    timer.unref();
    forced.addEventListener('abort', finish, { once: true });
    if (!busy()) finish();
  });
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
