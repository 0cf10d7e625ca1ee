// One replica of a certkeeper fleet, run as its own process by test/support/cluster/replicas.ts
// (bundled from the current src/ with esbuild first, so it always runs the code under test).
// It is what a service does: a shared store, an AcmeIssuer, an HTTPS server attached to the
// manager and an HTTP server answering HTTP-01 from the store. It talks to the test over IPC:
//   out  { type: 'up' }           ports of its servers, before its manager starts
//        { type: 'event' }        every manager event (dates as ISO strings, errors as code+message)
//        { type: 'locked' | 'unlocked' }  the per-certificate issue lock, as this process sees it
//        { type: 'log' | 'warning' } its info/warn/error log lines and process warnings
//        { type: 'reply' }        the answer to a call
//   in   { type: 'go' }           start the manager (the test releases every replica at once)
//        { type: 'call', method } renewNow / status / reconcile / stop
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHttp01Handler, Http01Solver } from '../../../src/challenges/http-01.js';
import type { ChallengeSolver } from '../../../src/challenges/solver.js';
import { TlsAlpn01Solver } from '../../../src/challenges/tls-alpn-01/solver.js';
import { AcmeIssuer } from '../../../src/issuers/acme/acme-issuer.js';
import type { Logger } from '../../../src/logger.js';
import { createCertificateManager } from '../../../src/manager/manager.js';
import { createHttpsServer } from '../../../src/server/create-server.js';
import { CachedStore } from '../../../src/store/cached-store.js';
import { FileStore } from '../../../src/store/file-store.js';
import { PostgresStore } from '../../../src/store/postgres-store.js';
import { RedisStore } from '../../../src/store/redis-store.js';
import type { Store } from '../../../src/store/store.js';
import type { ReplicaConfig, ReplicaMessage } from './protocol.js';

const config = JSON.parse(process.env.CERTKEEPER_REPLICA ?? '') as ReplicaConfig;

function send(message: ReplicaMessage): void {
  // The parent may already be gone (it killed us or failed); nothing to report to then.
  if (process.connected) process.send?.(message);
}

/** Dates and errors survive IPC as plain values; everything else is JSON already. */
function plain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error)
    return { code: (value as { code?: string }).code ?? 'ERROR', message: value.message };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const logger: Logger = {
  debug() {},
  info: (message, fields) => send({ type: 'log', level: 'info', message, fields: plain(fields) }),
  warn: (message, fields) => send({ type: 'log', level: 'warn', message, fields: plain(fields) }),
  error: (message, fields) => send({ type: 'log', level: 'error', message, fields: plain(fields) }),
};
process.on('warning', (warning) => send({ type: 'warning', name: warning.name, message: warning.message }));

function openStore(): Store {
  const encryption = { keys: [config.encryptionKey] };
  const s = config.store;
  if (s.kind === 'postgres') {
    return new PostgresStore({
      connection: { connectionString: s.url, application_name: s.applicationName },
      table: s.table,
      encryption,
      logger,
      timeoutMs: s.timeoutMs,
    });
  }
  const redis = new RedisStore({ url: s.url, prefix: s.prefix, encryption, logger, timeoutMs: s.timeoutMs });
  if (s.kind === 'redis') return redis;
  return new CachedStore({ primary: redis, cache: new FileStore({ directory: s.cacheDir }), logger });
}

/** Reports the per-certificate issue lock (`issue/<name>`), so the test knows who is ordering. */
function instrument(store: Store): Store {
  const lock = store.lock.bind(store);
  const unlock = store.unlock.bind(store);
  store.lock = async (name, options) => {
    const lease = await lock(name, options);
    if (name.startsWith('issue/')) send({ type: 'locked', name, token: lease.token, at: Date.now() });
    return lease;
  };
  store.unlock = async (lease) => {
    if (lease.name.startsWith('issue/'))
      send({ type: 'unlocked', name: lease.name, token: lease.token, at: Date.now() });
    return unlock(lease);
  };
  return store;
}

const store = instrument(openStore());
const solver: ChallengeSolver =
  config.challenge === 'tls-alpn-01' ? new TlsAlpn01Solver() : new Http01Solver();
const issuer = new AcmeIssuer({
  directoryUrl: config.directoryUrl,
  ca: config.caPem,
  agreeToTerms: true,
  contact: ['mailto:ops@certkeeper.test'],
  challenges: [solver],
  trustAnchors: [config.rootPem],
});
const manager = createCertificateManager({
  store,
  issuer,
  logger,
  replicaId: config.replicaId,
  certificates: config.certificates,
  lockTtlMs: config.lockTtlMs,
  reconcileIntervalMs: config.reconcileIntervalMs,
  renewal: { retryMinMs: 1_000, retryMaxMs: 2_000 },
});
for (const name of [
  'loaded',
  'obtaining',
  'obtained',
  'renewed',
  'adopted',
  'renewalFailed',
  'swapped',
  'rolledBack',
  'storedInvalid',
  'liveVerifyFailed',
] as const) {
  manager.on(name, (payload: unknown) =>
    send({ type: 'event', name, payload: plain(payload), at: Date.now() }),
  );
}

const app: http.RequestListener = (_req, res) => res.end(config.replicaId);
const https = createHttpsServer(manager, {}, app);
const handler = createHttp01Handler(store);
const plainHttp = http.createServer((req, res) => handler(req, res));
// Stopping must not wait for keep-alive connections the test's clients or Pebble left open.
const sockets = new Set<Socket>();
for (const server of [https, plainHttp]) {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
}
const listen = (server: http.Server) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
const [httpsPort, httpPort] = await Promise.all([listen(https), listen(plainHttp)]);

async function stop(): Promise<void> {
  await manager.stop();
  await issuer.close();
  for (const socket of sockets) socket.destroy();
  await Promise.all([https, plainHttp].map((s) => new Promise((r) => s.close(r))));
  await store.close();
}

const calls: Record<string, (args: unknown[]) => Promise<unknown>> = {
  renewNow: async ([id]) => manager.renewNow(String(id)),
  reconcile: async () => manager.reconcile(),
  status: async () => plain(manager.status()),
  certificate: async ([id]) => plain(manager.certificate(String(id))),
  stop: async () => {
    await stop();
    setImmediate(() => process.exit(0));
  },
};

process.on('message', (message: { type: string; id?: string; method?: string; args?: unknown[] }) => {
  if (message.type === 'go') {
    manager
      .start()
      .catch((error: unknown) =>
        send({ type: 'log', level: 'error', message: 'start failed', fields: plain({ error }) }),
      );
    return;
  }
  if (message.type !== 'call' || !message.id || !message.method) return;
  const { id, method } = message;
  const call = calls[method];
  if (!call) {
    send({ type: 'reply', id, ok: false, error: `unknown method ${method}` });
    return;
  }
  call(message.args ?? []).then(
    (value) => send({ type: 'reply', id, ok: true, value }),
    (error: unknown) =>
      send({ type: 'reply', id, ok: false, error: String((error as Error)?.message ?? error) }),
  );
});
// The test going away (it failed, or was killed) takes its replicas with it.
process.on('disconnect', () => process.exit(0));

send({ type: 'up', replicaId: config.replicaId, httpsPort, httpPort });
