// Shared set-up for the server tests: a real CertificateManager (MemoryStore, the InternalCA behind
// SwitchableIssuer), servers on 127.0.0.1 port 0, and a cleanup that stops managers and closes
// servers even while connections are still open.
import type net from 'node:net';
import type tls from 'node:tls';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import type { ManagedCertificateOptions, ManagerOptions } from '../../src/manager/options.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { listen } from '../support/tls.js';

export const silent = { debug() {}, info() {}, warn() {}, error() {} };

const cleanups: (() => Promise<void> | void)[] = [];

/** Runs every registered cleanup, newest first. Call from afterEach. */
export async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn();
}

export interface Fixture {
  manager: CertificateManager;
  issuer: SwitchableIssuer;
  store: MemoryStore;
  /** The InternalCA root (PEM): the only trust anchor of every client in these tests. */
  root: string;
}

/**
 * A started manager with every certificate obtained. The first certificate is the default.
 * Stopped by `cleanup()` unless `shared` (then the caller stops it, e.g. in afterAll).
 */
export async function startManager(
  certificates: ManagedCertificateOptions[] = [{ id: 'web', names: ['localhost', '127.0.0.1'] }],
  options: Partial<ManagerOptions> = {},
  shared = false,
): Promise<Fixture> {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const store = new MemoryStore();
  const manager = createCertificateManager({ store, issuer, certificates, logger: silent, ...options });
  if (!shared) cleanups.push(() => manager.stop());
  await manager.start();
  await manager.ready();
  const root = await issuer.ca.rootCertificate(store);
  return { manager, issuer, store, root };
}

/** Listens on 127.0.0.1:0; the server is closed (open connections destroyed) after the test. */
export async function serve(server: tls.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A refused client is the point of several tests; it must not become an unhandled error.
  server.on('tlsClientError', () => {});
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  );
  return listen(server);
}

/** Registers any other cleanup (client sockets, http2 sessions). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** The serial currently served for `id`, as the handshake helpers report it (lowercase hex). */
export function servedSerial(manager: CertificateManager, id: string): string {
  return manager.certificate(id)!.serial.toLowerCase();
}
