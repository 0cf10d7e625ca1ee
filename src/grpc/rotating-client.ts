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
import { CertkeeperError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { ClientIdentity, type ClientIdentityOptions } from '../mtls/generations.js';
import { loadGrpc } from './credentials.js';

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

export interface RotatingGrpcClient<C> {
  readonly identity: ClientIdentity;
  /** The client of the newest generation: take it for each call, do not keep it. */
  current(): C;
  /** The serial of the newest generation and the number of clients still open. */
  stats(): { serial: string | undefined; clients: number };
  /**
   * Closes every client (calls in flight finish on their channel; new calls are refused with
   * AGENT_CLOSED). Resolves once every channel is closed. Idempotent.
   */
  close(): Promise<void>;
}

export async function createRotatingGrpcClient<C extends grpc.Client>(
  manager: CertificateManager,
  options: RotatingGrpcClientOptions<C>,
): Promise<RotatingGrpcClient<C>> {
  const api = await loadGrpc('createRotatingGrpcClient');
  const identity = new ClientIdentity(manager, options.id, options);
  if (!identity.trust) {
    throw new CertkeeperError('INVALID_OPTION', 'createRotatingGrpcClient option trust is required');
  }
  const graceMs = options.graceMs ?? 1_000;
  let current: { key: string; serial: string; client: C; calls: ReturnType<typeof callCounter> } | undefined;
  const retiring = new Set<Retiring<C>>();
  let closed = false;

  const build = (): C => {
    const generation = identity.current();
    if (current?.key === generation.key) return current.client;
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
    const previous = current;
    current = { key: generation.key, serial: generation.serial, client, calls };
    if (previous)
      retiring.add(retire(previous.client, previous.calls, graceMs, (entry) => retiring.delete(entry)));
    return client;
  };
  const stopWatching = identity.onChange(() => {
    if (!closed && manager.certificate(options.id)) build();
  });

  return {
    identity,
    current() {
      if (closed) throw new CertkeeperError('AGENT_CLOSED', 'the rotating gRPC client is closed');
      return build();
    },
    stats: () => ({ serial: current?.serial, clients: (current ? 1 : 0) + retiring.size }),
    async close() {
      if (closed) return;
      closed = true;
      stopWatching();
      current?.client.close();
      current = undefined;
      for (const entry of retiring) entry.close();
      retiring.clear();
    },
  };
}

/** The longest a retired client is kept open for calls still running or waiting on it. */
export const RETIRE_LIMIT_MS = 30_000;

interface Retiring<C> {
  client: C;
  close(): void;
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
 * Closes a retired client once `graceMs` has passed and none of its calls is left (a call waiting
 * for a connection would fail if its channel closed), or RETIRE_LIMIT_MS later at the latest.
 */
function retire<C extends grpc.Client>(
  client: C,
  calls: ReturnType<typeof callCounter>,
  graceMs: number,
  onClosed: (entry: Retiring<C>) => void,
): Retiring<C> {
  let done = false;
  let graceOver = false;
  const entry: Retiring<C> = {
    client,
    close() {
      if (done) return;
      done = true;
      clearTimeout(grace);
      clearTimeout(limit);
      client.close();
      onClosed(entry);
    },
  };
  calls.onIdle(() => {
    if (graceOver) entry.close();
  });
  const grace = setTimeout(() => {
    graceOver = true;
    if (calls.active() === 0) entry.close();
  }, graceMs);
  const limit = setTimeout(() => entry.close(), graceMs + RETIRE_LIMIT_MS);
  grace.unref();
  limit.unref();
  return entry;
}
