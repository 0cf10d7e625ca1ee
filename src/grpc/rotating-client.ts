/**
 * A grpc-js client whose client certificate rotates, such that the server never sees an old
 * identity on a new call.
 *
 * Channel credentials built on a CertificateProvider (`grpcChannelCredentials`) only reach new
 * connections; a channel keeps its HTTP/2 connection, and so its TLS identity, for as long as
 * the connection lives. For mTLS where a rotated or distrusted identity must stop at once, this
 * keeps one client (channel) per generation, like RotatingAgent: `current()` returns the client
 * of the newest generation (checked on every call, a map lookup), and an older client is closed
 * (grpc-js lets its in-flight calls finish) once `graceMs` has passed.
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
  /** Builds a client, e.g. `(address, credentials, options) => new EchoClient(address, credentials, options)`. */
  create: (address: string, credentials: grpc.ChannelCredentials, options: grpc.ChannelOptions) => C;
  channelOptions?: grpc.ChannelOptions;
  /** Delay before a retired client is closed (its in-flight calls still finish). Default 1 s. */
  graceMs?: number;
}

export interface RotatingGrpcClient<C> {
  readonly identity: ClientIdentity;
  /** The client of the newest generation: take it for each call, do not keep it. */
  current(): C;
  /** The serial of the newest generation and the number of clients still open. */
  stats(): { serial: string | undefined; clients: number };
  /** Closes every client (in-flight calls finish). Idempotent. */
  close(): void;
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
  let current: { key: string; serial: string; client: C } | undefined;
  const retiring = new Set<{ client: C; timer: NodeJS.Timeout }>();
  let closed = false;

  const build = (): C => {
    const generation = identity.current();
    if (current?.key === generation.key) return current.client;
    const credentials = api.credentials.createSsl(
      Buffer.from((generation.ca ?? []).join('')),
      Buffer.from(generation.privateKey.toPem()),
      Buffer.from(generation.chainPem),
    );
    const client = options.create(options.address, credentials, { ...(options.channelOptions ?? {}) });
    const previous = current;
    current = { key: generation.key, serial: generation.serial, client };
    if (previous) {
      const entry = {
        client: previous.client,
        timer: setTimeout(() => {
          previous.client.close();
          retiring.delete(entry);
        }, graceMs),
      };
      entry.timer.unref();
      retiring.add(entry);
    }
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
    close() {
      if (closed) return;
      closed = true;
      stopWatching();
      current?.client.close();
      current = undefined;
      for (const entry of retiring) {
        clearTimeout(entry.timer);
        entry.client.close();
      }
      retiring.clear();
    },
  };
}
