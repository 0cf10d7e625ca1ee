// The one address Pebble's VA dials for HTTP-01 (`httpPort`) and TLS-ALPN-01 (`tlsPort`), in
// front of several replicas: a loopback TCP proxy whose `route` picks the replica per connection
// (round-robin, or deliberately not the replica running the order). It can also hold incoming
// connections unanswered (the CA's validation stalls mid-order) and release them later.

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ValidationKind = 'http' | 'tls';

export interface RoutedConnection {
  kind: ValidationKind;
  at: number;
  /** The backend port it went to; null when the route had none (the connection was dropped). */
  port: number | null;
}

export interface ValidationProxy {
  httpPort: number;
  tlsPort: number;
  /** Picks the backend port for a connection; undefined drops it. */
  route: (kind: ValidationKind) => number | undefined;
  /** Every connection routed so far. */
  connections: RoutedConnection[];
  /** Connections waiting while held. */
  readonly held: number;
  /** From now on, accept connections but forward nothing until release(). */
  hold(): void;
  /** Routes the held connections (with the route as it is now) and stops holding. */
  release(): void;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startValidationProxy(): Promise<ValidationProxy> {
  const sockets = new Set<Socket>();
  let holding = false;
  const waiting: { kind: ValidationKind; socket: Socket }[] = [];

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const forward = (kind: ValidationKind, socket: Socket) => {
    if (socket.destroyed) return;
    const port = proxy.route(kind);
    proxy.connections.push({ kind, at: Date.now(), port: port ?? null });
    if (port === undefined) {
      socket.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    track(upstream);
    socket.pipe(upstream).pipe(socket);
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  };

  const accept = (kind: ValidationKind) => (socket: Socket) => {
    track(socket);
    if (holding) waiting.push({ kind, socket });
    else forward(kind, socket);
  };

  const httpServer = createServer(accept('http'));
  const tlsServer = createServer(accept('tls'));
  const [httpPort, tlsPort] = await Promise.all([listen(httpServer), listen(tlsServer)]);

  const proxy: ValidationProxy = {
    httpPort,
    tlsPort,
    route: () => undefined,
    connections: [],
    get held() {
      return waiting.filter((w) => !w.socket.destroyed).length;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const { kind, socket } of waiting.splice(0)) forward(kind, socket);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all([httpServer, tlsServer].map((s) => new Promise((r) => s.close(r))));
    },
  };
  return proxy;
}
