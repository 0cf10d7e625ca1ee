// Two services in mutual TLS, each with its own manager and embedded CA, each trusting both CAs:
// service A serves `a-web` and calls out as `a-client`, service B likewise. Both rotate every
// certificate they own while the tests call continuously.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { afterEach, expect } from 'vitest';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { makeBundle, type TrustBundle, type TrustBundleSource } from '../../src/trust/bundle.js';
import { SwitchableIssuer } from '../support/issuers.js';

export const silent = { debug() {}, info() {}, warn() {}, error() {} };

export interface Service {
  name: string;
  manager: CertificateManager;
  root: string;
}

export async function startService(name: string): Promise<Service> {
  const issuer = new SwitchableIssuer({ lifetimeMs: 600_000 }); // short-lived; rotations here are forced;
  const store = new MemoryStore();
  const manager = createCertificateManager({
    store,
    issuer,
    certificates: [
      { id: `${name}-web`, names: ['localhost', '127.0.0.1'] },
      { id: `${name}-client`, names: [`${name}.svc.test`], purpose: 'client' },
    ],
    logger: silent,
    reconcileIntervalMs: 0,
  });
  await manager.start();
  await manager.ready();
  return { name, manager, root: await issuer.ca.rootCertificate(store) };
}

/**
 * Renews every certificate of every service (one after another), `rounds` times, `everyMs`
 * apart, the last wait included so calls also run on the final generation. A number of rounds,
 * not a duration: a slow machine stretches the test instead of weakening it. Returns the number
 * of rotations and the serials each certificate id has left behind.
 */
export async function rotateRounds(
  services: Service[],
  rounds: number,
  everyMs: number,
): Promise<{ rotations: number; retired: Map<string, Set<string>> }> {
  const retired = new Map<string, Set<string>>();
  let rotations = 0;
  for (let round = 0; round < rounds; round++) {
    for (const service of services) {
      for (const id of [`${service.name}-web`, `${service.name}-client`]) {
        const before = service.manager.certificate(id)!.serial;
        await service.manager.renewNow(id);
        if (!retired.has(id)) retired.set(id, new Set());
        retired.get(id)!.add(before);
        rotations++;
      }
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return { rotations, retired };
}

/** One spelling for a serial, whether from the manager (DER content hex) or getPeerCertificate(). */
export const serialKey = (serial: string) => BigInt(`0x${serial}`).toString(16);

/** What service B's mTLS server saw on one request. */
export interface Seen {
  /** The client serial the caller believed current when it made the request (header). */
  claimed: string;
  /** The serial of the client certificate the server verified on that request's connection. */
  presented: string;
  /** Whether that connection resumed a TLS session. */
  reused: boolean;
  path: string;
}

export interface MtlsServer {
  port: number;
  seen: Seen[];
  /** Requests that reached the handler and have not been answered yet. */
  pending: number;
  /** Open TLS connections. */
  connections: Set<tls.TLSSocket>;
}

/**
 * Service `s`'s mTLS server accepting clients of `roots`; records what each request presented.
 * `/slow?ms=N` answers after N ms (bounded by the server's close).
 */
export async function serveMtls(
  s: Service,
  roots: string[],
  cleanups: (() => unknown)[],
): Promise<MtlsServer> {
  const state: MtlsServer = { port: 0, seen: [], pending: 0, connections: new Set() };
  const timers = new Set<NodeJS.Timeout>();
  const server = createHttpsServer(
    s.manager,
    { requestCert: true, rejectUnauthorized: true, ca: roots },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      state.seen.push({
        claimed: serialKey(String(req.headers['x-client-serial'] ?? '0')),
        presented: serialKey(socket.getPeerCertificate().serialNumber),
        reused: socket.isSessionReused(),
        path: req.url ?? '',
      });
      const delay = Number(new URL(req.url ?? '/', 'https://x').searchParams.get('ms') ?? 0);
      state.pending++;
      const timer = setTimeout(() => {
        timers.delete(timer);
        state.pending--;
        res.end(`hello from ${s.name}`);
      }, delay);
      timers.add(timer);
    },
    { certificates: [`${s.name}-web`] },
  );
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    state.connections.add(socket);
    socket.on('close', () => state.connections.delete(socket));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    for (const timer of timers) clearTimeout(timer);
    server.closeAllConnections?.();
    return new Promise((r) => server.close(r));
  });
  state.port = (server.address() as AddressInfo).port;
  return state;
}

/** GET over `https.get` with `agent`; resolves with the body of a 200, rejects otherwise. */
export function get(port: number, agent: https.Agent, serial: string, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'localhost',
        agent,
        headers: { 'x-client-serial': serial },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`)),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Calls `call` from `workers` loops until `until` settles; counts successes and failures. */
export async function load(until: Promise<unknown>, workers: number, call: () => Promise<unknown>) {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  let ok = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!done) {
        try {
          await call();
          ok++;
        } catch (error) {
          failures.push(`${(error as { code?: string }).code ?? ''} ${String(error)}`);
        }
      }
    }),
  );
  return { ok, failures };
}

/** Polls `condition` every 20 ms; throws after `ms` (a bound, not a measurement). */
export async function waitFor(condition: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A trust source whose bundle the test replaces, as a TrustStore would on a change. */
export function mutableTrust(pems: string[]): TrustBundleSource & { set(pems: string[]): void } {
  let bundle = makeBundle(pems, 1);
  const listeners = new Set<(b: TrustBundle) => void>();
  return {
    current: () => bundle,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(next) {
      bundle = makeBundle(next, bundle.version + 1);
      for (const listener of listeners) listener(bundle);
    },
  };
}

/**
 * The test's core claim: each request presented exactly the client certificate that was current
 * when it was made (so after a rotation the old serial never appears on a new request), and the
 * client really went through several generations.
 */
export function expectHonest(
  seen: { claimed: string; presented: string | null }[],
  retiredSerials: Set<string> | undefined,
) {
  expect(seen.length).toBeGreaterThan(0);
  const wrong = seen.filter((s) => s.presented !== s.claimed);
  expect(wrong).toEqual([]);
  expect(retiredSerials?.size ?? 0).toBeGreaterThan(2);
  // Every generation that followed a rotation served calls (the first may not have: rotation
  // starts with the calls).
  expect(new Set(seen.map((s) => s.presented)).size).toBeGreaterThanOrEqual(retiredSerials!.size);
}

/** Cleanups for the calling test file, run newest first after each test. */
export function cleanupAfterEach(): (() => unknown)[] {
  const list: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of list.splice(0).reverse()) await fn();
  });
  return list;
}

/** Services `a` and `b`, stopped after the test. */
export async function twoServices(cleanups: (() => unknown)[]): Promise<[Service, Service]> {
  const [a, b] = await Promise.all([startService('a'), startService('b')]);
  cleanups.push(
    () => a.manager.stop(),
    () => b.manager.stop(),
  );
  return [a, b];
}

/** The serial `s` currently serves for `id`. */
export const currentSerial = (s: Service, id: string) => s.manager.certificate(id)!.serial;
