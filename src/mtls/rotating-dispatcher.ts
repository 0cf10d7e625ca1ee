/**
 * An undici `Dispatcher` (for `fetch(url, { dispatcher })`, `undici.request`, …) whose client
 * certificate rotates with the manager.
 *
 * undici captures `connect: { key, cert, ca }` when an Agent's connector is built, and each
 * connector has its own TLS session cache (protocols.md §2), so, as with https.Agent, rotation
 * means one Agent per generation: new requests go to the newest; an older Agent is closed with
 * `close()`, which lets its queued and running requests finish, then destroyed after `graceMs`
 * if something still hangs. undici is an optional peer dependency, loaded on first use.
 *
 * The forced end cannot be `agent.destroy()`: undici's Agent forgets its per-origin pools in
 * `close()` (it clears its map), so a `destroy()` after `close()` reaches none of them and a
 * hung request kept the old identity's connection open for good (undici 7.30). Each Agent is
 * therefore built with a `factory` that records its pools, and the forced end destroys those.
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
  const { connect, factory, ...agentOptions } = options.agentOptions ?? {};

  interface Generation {
    key: string;
    serial: string;
    agent: UndiciAgent;
    pools: Set<Dispatcher>;
  }
  interface Retiring {
    done: Promise<void>;
    destroy(reason: Error | null): Promise<void>;
  }

  class Rotating extends undici.Dispatcher {
    readonly identity = identity;
    #current: Generation | undefined;
    readonly #retiring = new Set<Retiring>();
    #closed = false;
    readonly #stopWatching = identity.onChange(() => {
      if (this.#closed || !manager.certificate(id)) return;
      try {
        this.#agent();
      } catch {
        // runs inside the manager's event emission; the next dispatch reports the failure
      }
    });

    stats() {
      return { serial: this.#current?.serial, generations: (this.#current ? 1 : 0) + this.#retiring.size };
    }

    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (this.#closed) throw new CertkeeperError('AGENT_CLOSED', 'the rotating dispatcher is closed');
      return this.#agent().dispatch(opts, handler);
    }

    /** Refuses new requests and retires every generation (queued work finishes, `graceMs` bound). */
    // biome-ignore lint/suspicious/noExplicitAny: undici's overloads (callback or promise) are kept as they are
    override close(callback?: () => void): any {
      this.#stop();
      const done = Promise.all([...this.#retiring].map((r) => r.done)).then(() => {});
      if (callback) void done.then(callback);
      else return done;
    }

    /** Aborts every request of every generation now. */
    // biome-ignore lint/suspicious/noExplicitAny: as close()
    override destroy(err?: Error | null | (() => void), callback?: () => void): any {
      const cb = typeof err === 'function' ? err : callback;
      const reason = typeof err === 'function' ? null : (err ?? null);
      this.#stop();
      const done = Promise.all([...this.#retiring].map((r) => r.destroy(reason))).then(() => {});
      if (cb) void done.then(cb);
      else return done;
    }

    #stop(): void {
      if (this.#closed) return;
      this.#closed = true;
      this.#stopWatching();
      const current = this.#current;
      this.#current = undefined;
      if (current) this.#retire(current);
    }

    #agent(): UndiciAgent {
      const generation = identity.current();
      if (this.#current?.key === generation.key) return this.#current.agent;
      const pools = new Set<Dispatcher>();
      const agent = new undici.Agent({
        ...agentOptions,
        // undici's default factory (a Client for one connection, else a Pool) or the caller's,
        // with each pool recorded for the forced end of a retired generation.
        factory: (origin: string | URL, opts: object) => {
          const pool = factory
            ? factory(origin, opts)
            : (opts as { connections?: number }).connections === 1
              ? new undici.Client(origin, opts)
              : new undici.Pool(origin, opts);
          pools.add(pool);
          return pool;
        },
        connect: {
          ...(connect ?? {}),
          key: generation.privateKey.toPem(),
          cert: generation.chainPem,
          ...(generation.ca ? { ca: generation.ca } : {}),
        },
      });
      const previous = this.#current;
      this.#current = { key: generation.key, serial: generation.serial, agent, pools };
      if (previous) this.#retire(previous);
      return agent;
    }

    #retire({ agent, pools }: Generation): void {
      let destroyed: Promise<void> | undefined;
      let forcedEnd!: (destroyed: Promise<void>) => void;
      const forced = new Promise<void>((resolve) => {
        forcedEnd = resolve;
      });
      const destroy = (reason: Error | null) => {
        clearTimeout(timer);
        destroyed ??= Promise.all([agent.destroy(reason), ...[...pools].map((p) => p.destroy(reason))]).then(
          () => {},
          () => {},
        );
        forcedEnd(destroyed);
        return destroyed;
      };
      const timer = setTimeout(() => destroy(null), graceMs);
      timer.unref();
      const entry: Retiring = {
        destroy,
        done: Promise.race([agent.close(), forced])
          .catch(() => {})
          .finally(() => {
            clearTimeout(timer);
            this.#retiring.delete(entry);
          }),
      };
      this.#retiring.add(entry);
    }
  }

  return new Rotating() as unknown as RotatingDispatcher;
}
