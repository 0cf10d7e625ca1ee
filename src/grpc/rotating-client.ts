/**
 * A grpc-js client whose client certificate rotates, such that the server never sees an old
 * identity on a new call.
 *
 * Channel credentials built on a CertificateProvider (`grpcChannelCredentials`) only reach new
 * connections; a channel keeps its HTTP/2 connection, and so its TLS identity, for as long as
 * the connection lives. For mTLS where a rotated or distrusted identity must stop at once, this
 * keeps one client (channel) per generation, like RotatingAgent: `current()` returns the client
 * of the newest generation (checked on every call, a map lookup), and an older client is closed
 * once `graceMs` has passed and its last call has ended. grpc-js lets in-flight calls finish on
 * a closed channel but fails the ones still waiting for a connection (`waitForReady` calls while
 * the server is unreachable), so calls are counted by an interceptor, given to `create` in the
 * client options: pass those options on to the client's constructor.
 */
import type * as grpc from '@grpc/grpc-js';
import { optionError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { GenerationPool } from '../mtls/generation-pool.js';
import { ClientIdentity, type ClientIdentityOptions, followIdentity } from '../mtls/generations.js';
import { loadGrpc } from './credentials.js';

/** Options of `createRotatingGrpcClient`. */
export interface RotatingGrpcClientOptions<C> extends ClientIdentityOptions {
  /** Managed client certificate (purpose 'client'). */
  id: string;
  /** `host:port` of the server. */
  address: string;
  /**
   * Builds a client, e.g. `(address, credentials, options) => new EchoClient(address, credentials, options)`.
   * `options` carries an `interceptors` entry that counts the client's calls: keep it (add your
   * own interceptors after it), or a retired client is closed after `graceMs` whatever waits on it.
   */
  create: (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => C;
  channelOptions?: grpc.ChannelOptions;
  /**
   * A retired client is closed once this has passed and its calls (in flight or waiting for a
   * connection) have ended, 30 s later at the latest. Default 1 s.
   */
  graceMs?: number;
}

/** A gRPC client per client-certificate generation; `current()` is the newest. */
export interface RotatingGrpcClient<C> {
  readonly identity: ClientIdentity;
  /** The client of the newest generation: take it for each call, do not keep it. */
  current(): C;
  /** The serial of the newest generation and the number of clients still open. */
  stats(): { serial: string | undefined; clients: number };
  /**
   * Refuses new calls (AGENT_CLOSED) and closes every client once its calls (in flight or
   * waiting for a connection) have ended, RETIRE_LIMIT_MS after `graceMs` at the latest. Resolves
   * once every channel is closed. Idempotent.
   */
  close(): Promise<void>;
  /**
   * Refuses new calls and closes every channel now: calls in flight finish on their channel,
   * calls still waiting for a connection fail. Idempotent.
   */
  destroy(): Promise<void>;
}

/** The longest a retired client is kept open, after `graceMs`, for calls still running or waiting on it. */
export const RETIRE_LIMIT_MS = 30_000;

interface Generation<C> {
  serial: string;
  client: C;
  calls: ReturnType<typeof callCounter>;
}

export async function createRotatingGrpcClient<C extends grpc.Client>(
  manager: CertificateManager,
  options: RotatingGrpcClientOptions<C>,
): Promise<RotatingGrpcClient<C>> {
  const api = await loadGrpc('createRotatingGrpcClient');
  const identity = new ClientIdentity(manager, options.id, options);
  if (!identity.trust) throw optionError('trust', 'is required', 'createRotatingGrpcClient');
  const graceMs = options.graceMs ?? 1_000;
  const pool: GenerationPool<Generation<C>> = new GenerationPool({
    name: 'the rotating gRPC client',
    graceMs: graceMs + RETIRE_LIMIT_MS,
    // A client retired by a rotation may still be in a caller's hands for a call about to start:
    // it stays open for `graceMs` first. One retired by close() has no such caller left.
    drain: ({ client, calls }, forced) =>
      idle(calls, pool.closed ? 0 : graceMs, forced).then(() => client.close()),
    destroy: ({ client }) => client.close(),
  });
  const current = followIdentity(identity, pool, (generation) => {
    const credentials = api.credentials.createSsl(
      Buffer.from((generation.ca ?? []).join('')),
      Buffer.from(generation.privateKey.toPem()),
      Buffer.from(generation.chainPem),
    );
    const calls = callCounter(api);
    const client = options.create(options.address, credentials, {
      ...(options.channelOptions ?? {}),
      interceptors: [calls.interceptor],
    });
    return { serial: generation.serial, client, calls };
  });

  return {
    identity,
    current: () => current().client,
    stats: () => ({ serial: pool.current?.serial, clients: pool.size }),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

/**
 * Counts the calls of one client, from start to status: in flight, or queued waiting for a
 * connection. Passed to `create` as the `interceptors` client option.
 */
function callCounter(api: typeof grpc): {
  interceptor: grpc.Interceptor;
  active(): number;
  onIdle(fn: () => void): void;
} {
  let active = 0;
  let idle: (() => void) | undefined;
  const interceptor: grpc.Interceptor = (options, nextCall) => {
    let ended = false;
    return new api.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        active++;
        // A partial listener: grpc-js passes on whatever it does not define.
        const counting = new api.ListenerBuilder()
          .withOnReceiveStatus((status, forward) => {
            if (!ended) {
              ended = true;
              active--;
              if (active === 0) idle?.();
            }
            forward(status);
          })
          .build();
        next(metadata, counting);
      },
    });
  };
  return { interceptor, active: () => active, onIdle: (fn) => (idle = fn) };
}

/**
 * Resolves once `minMs` has passed and none of the client's calls is left (closing the channel
 * would fail a call waiting for a connection), or when `forced` aborts.
 */
function idle(calls: ReturnType<typeof callCounter>, minMs: number, forced: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    let graceOver = false;
    const done = () => {
      clearTimeout(grace);
      forced.removeEventListener('abort', done);
      calls.onIdle(() => {});
      resolve();
    };
    calls.onIdle(() => {
      if (graceOver) done();
    });
    forced.addEventListener('abort', done, { once: true });
    const grace = setTimeout(() => {
      graceOver = true;
      if (calls.active() === 0) done();
    }, minMs);
    grace.unref();
  });
}
