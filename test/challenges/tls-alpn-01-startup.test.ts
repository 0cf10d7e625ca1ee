// The README's start-up order with TLS-ALPN-01, its first-choice challenge (issue 13, item 21):
//   await manager.start(); await manager.ready(); createHttpsServer(manager, …).listen(…)
// Before the server exists nothing can answer `acme-tls/1`, so TLS-ALPN-01 is not offered to the
// CA while no attached server is listening: the next challenge type is used at once, and when it
// is the only one the attempt fails with CHALLENGE_UNAVAILABLE, which names the fix and is not
// retried on the minute-by-minute schedule (each retry would be an order at the CA) but as soon as
// an attached server starts listening. Against a real ACME server (Pebble), default retry policy.
import type { Server } from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Http01Solver, startHttp01Server } from '../../src/challenges/http-01.js';
import type { ChallengeContext } from '../../src/challenges/solver.js';
import { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import { TlsAlpn01Solver } from '../../src/challenges/tls-alpn-01/solver.js';
import { systemClock } from '../../src/clock.js';
import type { CertkeeperError } from '../../src/errors.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { silentLogger } from '../../src/logger.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { ServerAttachment } from '../../src/server/attachment.js';
import { CertificateCache } from '../../src/server/certificate-cache.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { nextEvent } from '../support/events.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';
import { close, listen } from '../support/tls.js';

/** Rejects when `promise` has not settled within `ms` (a hang fails the test with a reason). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** GET / over HTTPS, trusting only Pebble's root: the serial served for `name`. */
function served(port: number, name: string, root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, servername: name, ca: root, path: '/', agent: false },
      (res) => {
        res.resume();
        res.once('end', () =>
          resolve((request.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toLowerCase()),
        );
      },
    );
    request.once('error', reject);
    request.setTimeout(5_000, () => request.destroy(new Error('timeout')));
  });
}

describePebble('TLS-ALPN-01 and the README start-up order', () => {
  let pebble: Pebble;
  let root: string;
  const stops: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0' } });
    root = await pebble.roots();
  }, 30_000);
  afterAll(async () => {
    await pebble?.stop();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  function app(challenges: (TlsAlpn01Solver | Http01Solver)[], name: string) {
    const store = new MemoryStore();
    const issuer = new AcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      ca: pebble.caPem,
      agreeToTerms: true,
      challenges,
      trustAnchors: [root],
    });
    const manager = createCertificateManager({
      store,
      issuer,
      logger: silentLogger,
      certificates: [{ names: [name] }],
    });
    stops.push(async () => {
      await manager.stop();
      await issuer.close();
    });
    return { store, manager };
  }

  function serve(manager: CertificateManager): Promise<https.Server> {
    const server = createHttpsServer(manager, { minVersion: 'TLSv1.2' }, (_req, res) => res.end('ok'));
    stops.push(() => close(server));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(pebble.tlsPort, '127.0.0.1', () => resolve(server));
    });
  }

  it('TLS-ALPN-01 first, HTTP-01 next: the documented order gets its first certificate (through HTTP-01)', async () => {
    const name = 'readme.certkeeper.test';
    const { store, manager } = app([new TlsAlpn01Solver(), new Http01Solver()], name);
    const http01: { server: Server; close(): Promise<void> } = await startHttp01Server({
      store,
      port: pebble.httpPort,
      host: '127.0.0.1',
    });
    stops.push(() => http01.close());
    const failures: CertkeeperError[] = [];
    manager.on('renewalFailed', (event) => failures.push(event.error));

    await manager.start();
    await within(manager.ready(), 20_000, 'ready()');
    await serve(manager);

    expect(failures).toEqual([]);
    expect(await served(pebble.tlsPort, name, root)).toBe(
      manager.certificate(manager.status()[0]!.id)!.serial,
    );
  });

  it('TLS-ALPN-01 only: a typed error naming the fix, then an order as soon as the server listens', async () => {
    const name = 'alpn-only.certkeeper.test';
    const { manager } = app([new TlsAlpn01Solver()], name);
    const failed = nextEvent(manager, 'renewalFailed', 20_000);

    await manager.start();
    // ready() before any server listens: refused at once with the typed cause (retrying cannot
    // help until the application listens), instead of hanging.
    const refused = await manager.ready().then(
      () => null,
      (e: unknown) => e as CertkeeperError,
    );
    const { error, retryAt } = await failed;
    expect(error.code).toBe('CHALLENGE_UNAVAILABLE');
    expect(error.message).toMatch(/listen/);
    expect(error.message).toMatch(/ready\(\)/);
    expect(error.details).toMatchObject({ challenge: 'tls-alpn-01', retryable: false });
    expect(refused?.code).toBe('NOT_READY');
    expect(refused?.details.failed).toEqual({ [name]: 'CHALLENGE_UNAVAILABLE' });
    // Not the minute-by-minute schedule: each retry would be one more order at the CA.
    expect(retryAt.getTime() - Date.now()).toBeGreaterThan(3_600_000);

    // The server is created and listens: the order goes again at once, and ready() resolves.
    await serve(manager);
    await within(manager.ready(), 20_000, 'ready() after the server started listening');
    expect(await served(pebble.tlsPort, name, root)).toBe(
      manager.certificate(manager.status()[0]!.id)!.serial,
    );
  });
});

describe('TlsAlpn01Solver availability', () => {
  it('is available exactly while a server answering TLS-ALPN-01 for this registry listens', async () => {
    const registry = new AlpnChallengeRegistry();
    const solver = new TlsAlpn01Solver();
    const context: ChallengeContext = {
      store: new MemoryStore(),
      clock: systemClock,
      logger: silentLogger,
      signal: new AbortController().signal,
      tlsAlpn: { registry },
    };
    const identifier = { type: 'dns' as const, value: 'a.test' };
    expect(solver.supports(identifier, false, context)).toBe(false);
    expect(solver.unavailable(identifier, false, context)?.code).toBe('CHALLENGE_UNAVAILABLE');

    const server = https.createServer();
    const attachment = new ServerAttachment(server, {
      cache: new CertificateCache(),
      logger: silentLogger,
      alpnChallenges: registry,
      usesTlsAlpn: () => true,
    });
    // Attached but not listening yet.
    expect(solver.supports(identifier, false, context)).toBe(false);
    const listening = new Promise<void>((resolve) => registry.onListening(resolve));
    await listen(server);
    await listening;
    expect(solver.supports(identifier, false, context)).toBe(true);
    expect(solver.unavailable(identifier, false, context)).toBeUndefined();
    // Never for wildcards; standalone use (no registry in the context) as before.
    expect(solver.supports(identifier, true, context)).toBe(false);
    expect(solver.supports(identifier, false)).toBe(true);

    await close(server);
    expect(solver.supports(identifier, false, context)).toBe(false);
    attachment.detach();
  });
});
