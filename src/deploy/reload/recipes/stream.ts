/**
 * A request/answer exchange over a fresh stream connection (a Unix socket, TCP, or TLS): write
 * one request, read until the peer closes or `complete(answer)` says the answer is whole. The
 * admin channels of HAProxy (its runtime API) and Redis (RESP) are spoken through it.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface StreamEndpoint {
  /** A Unix socket path. */
  path?: string;
  host?: string;
  port?: number;
  /** Connect with TLS (peer verified against `ca`, or the system roots). */
  tls?: { ca?: string; servername?: string; rejectUnauthorized?: boolean };
}

export function describeEndpoint(endpoint: StreamEndpoint): string {
  return endpoint.path ?? `${endpoint.host ?? '127.0.0.1'}:${endpoint.port}`;
}

/** Sends `request` and resolves with everything read until `complete` or the peer's close. */
export function exchange(
  endpoint: StreamEndpoint,
  request: string | Buffer,
  complete: (answer: Buffer) => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const address = endpoint.path
      ? { path: endpoint.path }
      : { host: endpoint.host ?? '127.0.0.1', port: endpoint.port ?? 0 };
    const socket = endpoint.tls
      ? tls.connect({ ...address, ...endpoint.tls, servername: endpoint.tls.servername })
      : net.connect(address);
    let answer = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer);
    };
    const onAbort = () => finish(new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      if (complete(answer)) finish(null);
    });
    socket.once('end', () => finish(null));
    socket.once('error', (error) => finish(error));
  });
}
