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

export class RotatingAgent extends https.Agent {
  readonly identity: ClientIdentity;
  readonly #agentOptions: https.AgentOptions;
  readonly #graceMs: number;
  readonly #retired = new Set<{ agent: https.Agent; timer: NodeJS.Timeout }>();
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
    // than at the next request.
    this.#stopWatching = this.identity.onChange(() => {
      if (!this.#closed && this.identity.manager.certificate(this.identity.id)) this.#agent();
    });
  }

  /** The serial presented by new connections, and the number of generations still alive. */
  stats(): { serial: string | undefined; generations: number } {
    return { serial: this.#current?.serial, generations: (this.#current ? 1 : 0) + this.#retired.size };
  }

  // Called by http.ClientRequest for every request made with `agent: this`.
  addRequest(req: unknown, options: unknown): void {
    if (this.#closed) {
      (req as { destroy(error: Error): void }).destroy(
        new CertkeeperError('AGENT_CLOSED', 'the rotating agent was destroyed'),
      );
      return;
    }
    let agent: https.Agent;
    try {
      agent = this.#agent();
    } catch (error) {
      (req as { destroy(error: Error): void }).destroy(error as Error);
      return;
    }
    (agent as unknown as AgentInternals).addRequest(req, options);
  }

  /** Destroys every underlying Agent and their sockets (in-flight requests fail). Idempotent. */
  override destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatching();
    this.#current?.agent.destroy();
    this.#current = undefined;
    for (const retired of this.#retired) {
      clearInterval(retired.timer);
      retired.agent.destroy();
    }
    this.#retired.clear();
    super.destroy();
  }

  #agent(): https.Agent {
    const generation = this.identity.current();
    if (this.#current?.key === generation.key) return this.#current.agent;
    const agent = new https.Agent({
      ...this.#agentOptions,
      key: generation.keyPem,
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
    internals.keepAlive = false; // a socket freed after its request is destroyed, not pooled
    for (const list of Object.values(internals.freeSockets))
      for (const socket of list ?? []) socket.destroy();
    const busy = Object.values(internals.sockets).some((list) => (list?.length ?? 0) > 0);
    if (!busy) {
      agent.destroy();
      return;
    }
    // Destroyed once its last busy socket is gone (checked every 100 ms), at the latest after
    // the grace period.
    const deadline = Date.now() + this.#graceMs;
    const entry = {
      agent,
      timer: setInterval(() => {
        const stillBusy = Object.values(internals.sockets).some((list) => (list?.length ?? 0) > 0);
        if (stillBusy && Date.now() < deadline) return;
        clearInterval(entry.timer);
        agent.destroy();
        this.#retired.delete(entry);
      }, 100),
    };
    entry.timer.unref();
    this.#retired.add(entry);
  }
}

/** An `https.Agent` that always presents the newest certificate of client certificate `id`. */
export function createRotatingAgent(
  manager: CertificateManager,
  id: string,
  options: RotatingAgentOptions = {},
): RotatingAgent {
  return new RotatingAgent(manager, id, options);
}
