/**
 * An undici `Dispatcher` (for `fetch(url, { dispatcher })`, `undici.request`, …) whose client
 * certificate rotates with the manager.
 *
 * undici captures `connect: { key, cert, ca }` when an Agent's connector is built, and each
 * connector has its own TLS session cache (protocols.md §2), so, as with https.Agent, rotation
 * means one Agent per generation: new requests go to the newest; an older Agent is closed with
 * `close()`, which lets its queued and running requests finish, then destroyed after `graceMs`
 * if something still hangs. undici is an optional peer dependency, loaded on first use.
 */
import type { Dispatcher, Agent as UndiciAgent } from 'undici';
import { CertkeeperError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { loadPeer } from '../store/peer.js';
import { ClientIdentity, type ClientIdentityOptions } from './generations.js';

export interface RotatingDispatcherOptions extends ClientIdentityOptions {
  /** Options of every underlying undici Agent (connections, keepAliveTimeout, …); `connect` TLS fields are ours. */
  agentOptions?: Omit<UndiciAgent.Options, 'connect'> & {
    connect?: Omit<NonNullable<UndiciAgent.Options['connect']>, 'key' | 'cert' | 'ca'>;
  };
  /** How long a retired Agent may finish its requests before it is destroyed. Default 30 s. */
  graceMs?: number;
}

export type RotatingDispatcher = Dispatcher & {
  readonly identity: ClientIdentity;
  /** The serial presented by new connections, and the number of generations still alive. */
  stats(): { serial: string | undefined; generations: number };
};

type UndiciModule = typeof import('undici');

/** A dispatcher that always presents the newest certificate of client certificate `id`. */
export async function createRotatingDispatcher(
  manager: CertificateManager,
  id: string,
  options: RotatingDispatcherOptions = {},
): Promise<RotatingDispatcher> {
  const undici = await loadPeer<UndiciModule>('undici', 'createRotatingDispatcher', () => import('undici'));
  const graceMs = options.graceMs ?? 30_000;
  if (!(Number.isFinite(graceMs) && graceMs >= 0)) {
    throw new CertkeeperError('INVALID_OPTION', 'RotatingDispatcher option graceMs must be a number >= 0');
  }
  const identity = new ClientIdentity(manager, id, options);
  const { connect, ...agentOptions } = options.agentOptions ?? {};

  class Rotating extends undici.Dispatcher {
    readonly identity = identity;
    #current: { key: string; serial: string; agent: UndiciAgent } | undefined;
    readonly #retiring = new Set<Promise<void>>();
    #closed = false;
    readonly #stopWatching = identity.onChange(() => {
      if (!this.#closed && manager.certificate(id)) this.#agent();
    });

    stats() {
      return { serial: this.#current?.serial, generations: (this.#current ? 1 : 0) + this.#retiring.size };
    }

    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (this.#closed) throw new CertkeeperError('AGENT_CLOSED', 'the rotating dispatcher is closed');
      return this.#agent().dispatch(opts, handler);
    }

    // biome-ignore lint/suspicious/noExplicitAny: undici's overloads (callback or promise) are kept as they are
    override close(callback?: () => void): any {
      const done = this.#shutdown((agent) => agent.close());
      if (callback) void done.then(callback);
      else return done;
    }

    // biome-ignore lint/suspicious/noExplicitAny: as close()
    override destroy(err?: Error | null | (() => void), callback?: () => void): any {
      const cb = typeof err === 'function' ? err : callback;
      const reason = typeof err === 'function' ? null : (err ?? null);
      const done = this.#shutdown((agent) => agent.destroy(reason));
      if (cb) void done.then(cb);
      else return done;
    }

    async #shutdown(end: (agent: UndiciAgent) => Promise<void>): Promise<void> {
      if (!this.#closed) {
        this.#closed = true;
        this.#stopWatching();
      }
      const current = this.#current;
      this.#current = undefined;
      await Promise.all([current ? end(current.agent) : undefined, ...this.#retiring]);
    }

    #agent(): UndiciAgent {
      const generation = identity.current();
      if (this.#current?.key === generation.key) return this.#current.agent;
      const agent = new undici.Agent({
        ...agentOptions,
        connect: {
          ...(connect ?? {}),
          key: generation.keyPem,
          cert: generation.chainPem,
          ...(generation.ca ? { ca: generation.ca } : {}),
        },
      });
      const previous = this.#current;
      this.#current = { key: generation.key, serial: generation.serial, agent };
      if (previous) this.#retire(previous.agent);
      return agent;
    }

    #retire(agent: UndiciAgent): void {
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        timer = setTimeout(() => resolve(agent.destroy().catch(() => {})), graceMs);
        timer.unref();
      });
      const done: Promise<void> = Promise.race([agent.close(), forced])
        .catch(() => {})
        .finally(() => {
          clearTimeout(timer);
          this.#retiring.delete(done);
        });
      this.#retiring.add(done);
    }
  }

  return new Rotating() as unknown as RotatingDispatcher;
}
