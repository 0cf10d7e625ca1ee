// A certkeeper deployment in front of a real Pebble: a manager with an AcmeIssuer, an HTTPS (or
// http2) server on Pebble's tlsPort answering TLS-ALPN-01, and an HTTP server on Pebble's httpPort
// answering HTTP-01 from the store.
import http from 'node:http';
import type https from 'node:https';
import tls from 'node:tls';
import { Dns01Solver } from '../../../src/challenges/dns-01.js';
import { createHttp01Handler, Http01Solver } from '../../../src/challenges/http-01.js';
import { ChallTestSrvProvider } from '../../../src/challenges/providers/challtestsrv.js';
import type { ChallengeSolver, ChallengeType } from '../../../src/challenges/solver.js';
import { TlsAlpn01Solver } from '../../../src/challenges/tls-alpn-01/solver.js';
import { AcmeIssuer, type AcmeIssuerOptions } from '../../../src/issuers/acme/acme-issuer.js';
import type { Issuer } from '../../../src/issuers/issuer.js';
import type { ManagerEvents } from '../../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../../src/manager/manager.js';
import type { ManagerOptions } from '../../../src/manager/options.js';
import { createHttp2SecureServer, createHttpsServer } from '../../../src/server/create-server.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { Store } from '../../../src/store/store.js';
import type { Pebble } from '../../support/pebble.js';

export const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export function solvers(pebble: Pebble, types: ChallengeType[]): ChallengeSolver[] {
  return types.map((type) => {
    if (type === 'http-01') return new Http01Solver();
    if (type === 'tls-alpn-01') return new TlsAlpn01Solver();
    return new Dns01Solver({
      provider: new ChallTestSrvProvider(pebble.challtestsrv.url),
      resolvers: [pebble.challtestsrv.dnsServer],
      pollIntervalMs: 50,
    });
  });
}

export interface Rig {
  manager: CertificateManager;
  issuer: AcmeIssuer;
  store: Store;
  server: tls.Server;
  events: { name: keyof ManagerEvents; payload: Record<string, unknown> }[];
  close(): Promise<void>;
}

export interface RigOptions {
  names: string[];
  challenges: ChallengeType[];
  store?: Store;
  kind?: 'https' | 'http2';
  issuer?: Partial<AcmeIssuerOptions>;
  /** Replaces the HTTP-01 handler (to make validations fail on purpose). */
  httpHandler?: (handler: ReturnType<typeof createHttp01Handler>) => http.RequestListener;
  /** Don't check chains against Pebble's root (it changes when Pebble restarts). */
  noAnchors?: boolean;
  /** More manager options (issueTimeoutMs, …). */
  manager?: Partial<ManagerOptions>;
  /** Issuers the manager tries after the ACME one (an issuer change, a fallback). */
  issuersAfter?: Issuer[];
}

export async function rig(pebble: Pebble, options: RigOptions): Promise<Rig> {
  const store = options.store ?? new MemoryStore();
  const issuer = new AcmeIssuer({
    directoryUrl: pebble.directoryUrl,
    ca: pebble.caPem,
    agreeToTerms: true,
    contact: ['mailto:ops@certkeeper.test'],
    challenges: solvers(pebble, options.challenges),
    ...(options.noAnchors ? {} : { trustAnchors: [await pebble.roots()] }),
    ...options.issuer,
  });
  const manager = createCertificateManager({
    store,
    issuer: options.issuersAfter ? [issuer, ...options.issuersAfter] : issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: options.names }],
    renewal: { retryMinMs: 1_000 },
    ...options.manager,
  });
  const events: Rig['events'] = [];
  for (const name of [
    'obtaining',
    'obtained',
    'renewed',
    'renewalFailed',
    'rolledBack',
    'swapped',
    'storedInvalid',
  ] as const) {
    manager.on(name, (payload) =>
      events.push({ name, payload: payload as unknown as Record<string, unknown> }),
    );
  }
  const app: http.RequestListener = (_req, res) => res.end('ok');
  const server: tls.Server =
    options.kind === 'http2'
      ? (createHttp2SecureServer(manager, { allowHTTP1: true }, app as never) as unknown as tls.Server)
      : (createHttpsServer(manager, {}, app) as https.Server);
  // Closing must not wait for idle keep-alive / h2 sessions of earlier requests.
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(pebble.tlsPort, '127.0.0.1', () => resolve());
  });
  const handler = createHttp01Handler(store);
  const plain = http.createServer(
    options.httpHandler ? options.httpHandler(handler) : (req, res) => handler(req, res),
  );
  await new Promise<void>((resolve, reject) => {
    plain.once('error', reject);
    plain.listen(pebble.httpPort, '127.0.0.1', () => resolve());
  });
  return {
    manager,
    issuer,
    store,
    server,
    events,
    async close() {
      await manager.stop();
      await issuer.close();
      const closed = new Promise((r) => server.close(r));
      for (const socket of sockets) socket.destroy();
      await closed;
      plain.closeAllConnections();
      await new Promise((r) => plain.close(r));
    },
  };
}

/** A verifying client: trusts only Pebble's root, checks the host name. */
export function fetchOk(
  port: number,
  servername: string,
  root: string,
): Promise<{ serial: string; status: number }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername, ca: root, ALPNProtocols: ['http/1.1'] },
      () => {
        const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
        socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
        let text = '';
        socket.on('data', (d) => {
          text += d;
        });
        socket.on('end', () => resolve({ serial, status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0) }));
      },
    );
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
  });
}
