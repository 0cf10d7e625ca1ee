/**
 * An undici `Dispatcher` (for `fetch(url, { dispatcher })`, `undici.request`, …) whose client
 * certificate rotates with the manager.
 *
 * undici captures `connect: { key, cert, ca }` when an Agent's connector is built, and each
 * connector has its own TLS session cache, so, as with https.Agent, rotation
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
import { optionError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { loadPeer } from '../store/peer.js';
import { GenerationPool } from './generation-pool.js';
import {
  type ClientGeneration,
  ClientIdentity,
  type ClientIdentityOptions,
  followIdentity,
} from './generations.js';

/** Options of `createRotatingDispatcher`. */
export interface RotatingDispatcherOptions extends ClientIdentityOptions {
  /** Options of every underlying undici Agent (connections, keepAliveTimeout, …); `connect` TLS fields are ours. */
  agentOptions?: Omit<UndiciAgent.Options, 'connect'> & {
    connect?: Omit<NonNullable<UndiciAgent.Options['connect']>, 'key' | 'cert' | 'ca'>;
  };
  /** How long a retired Agent may finish its requests before it is destroyed. Default 30 s. */
  graceMs?: number;
}

/** An undici dispatcher presenting the current managed client certificate, one Agent per certificate generation. */
export type RotatingDispatcher = Dispatcher & {
  readonly identity: ClientIdentity;
  /** The serial presented by new connections, and the number of generations still alive. */
  stats(): { serial: string | undefined; generations: number };
};

type UndiciModule = typeof import('undici');

interface Generation {
  serial: string;
  agent: UndiciAgent;
  /** Every per-origin pool of `agent` (see the forced end above). */
  pools: Set<Dispatcher>;
}

/** A dispatcher that always presents the newest certificate of client certificate `id`. */
export async function createRotatingDispatcher(
  manager: CertificateManager,
  id: string,
  options: RotatingDispatcherOptions = {},
): Promise<RotatingDispatcher> {
  const undici = await loadPeer<UndiciModule>('undici', 'createRotatingDispatcher', () => import('undici'));
  const graceMs = options.graceMs ?? 30_000;
  if (!(Number.isFinite(graceMs) && graceMs >= 0)) {
    throw optionError('graceMs', 'must be a number >= 0', 'RotatingDispatcher');
  }
  const identity = new ClientIdentity(manager, id, options);
  const { connect, factory, ...agentOptions } = options.agentOptions ?? {};
  const pool = new GenerationPool<Generation>({
    name: 'the rotating dispatcher',
    graceMs,
    // close() lets queued and running requests finish.
    drain: ({ agent }) => agent.close(),
    destroy: async ({ agent, pools }, reason) => {
      await Promise.all([agent.destroy(reason), ...[...pools].map((p) => p.destroy(reason))]);
    },
  });

  const build = ({ serial, privateKey, chainPem, ca }: ClientGeneration): Generation => {
    const pools = new Set<Dispatcher>();
    const agent = new undici.Agent({
      ...agentOptions,
      // undici's default factory (a Client for one connection, else a Pool) or the caller's,
      // with each pool recorded for the forced end of a retired generation.
      factory: (origin: string | URL, opts: object) => {
        const made = factory
          ? factory(origin, opts)
          : (opts as { connections?: number }).connections === 1
            ? new undici.Client(origin, opts)
            : new undici.Pool(origin, opts);
        pools.add(made);
        return made;
      },
      connect: {
        ...(connect ?? {}),
        key: privateKey.toPem(),
        cert: chainPem,
        ...(ca ? { ca } : {}),
      },
    });
    return { serial, agent, pools };
  };
  const current = followIdentity(identity, pool, build);

  class Rotating extends undici.Dispatcher {
    readonly identity = identity;

    stats() {
      return { serial: pool.current?.serial, generations: pool.size };
    }

    override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      return current().agent.dispatch(opts, handler);
    }

    /** Refuses new requests and retires every generation (queued work finishes, `graceMs` bound). */
    // biome-ignore lint/suspicious/noExplicitAny: undici's overloads (callback or promise) are kept as they are
    override close(callback?: () => void): any {
      const done = pool.close();
      if (callback) void done.then(callback);
      else return done;
    }

    /** Aborts every request of every generation now. */
    // biome-ignore lint/suspicious/noExplicitAny: as close()
    override destroy(err?: Error | null | (() => void), callback?: () => void): any {
      const cb = typeof err === 'function' ? err : callback;
      const done = pool.destroy(typeof err === 'function' ? null : (err ?? null));
      if (cb) void done.then(cb);
      else return done;
    }
  }

  return new Rotating() as unknown as RotatingDispatcher;
}
