// Hot swap on a running server: open connections keep the certificate they started with, new
// handshakes get the new one as soon as renewNow resolves, no handshake fails while certificates
// are replaced in a row, and sessions resume across a swap (stable ticket keys).
import tls from 'node:tls';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createHttpsServer, createTlsServer } from '../../src/server/create-server.js';
import { connectOpen, handshake, roundTrip } from '../support/tls.js';
import { cleanup, onCleanup, serve, servedSerial, startManager } from './harness.js';

afterEach(cleanup);

const CERTIFICATES = [
  { id: 'web', names: ['localhost', '127.0.0.1'] },
  { id: 'wild', names: ['*.api.test'] },
];

/** An echo server made by the helper; `web` is its default (setSecureContext), `wild` is SNI-routed. */
async function echoServer() {
  const fixture = await startManager(CERTIFICATES);
  const server = createTlsServer(fixture.manager, {}, (socket) => socket.pipe(socket));
  const port = await serve(server);
  return { ...fixture, server, port, serial: (id: string) => servedSerial(fixture.manager, id) };
}

// The default certificate is swapped with setSecureContext, the others through the SNI cache.
const PATHS = [
  { path: 'default certificate', id: 'web', servername: 'localhost' },
  { path: 'SNI-routed certificate', id: 'wild', servername: 'x.api.test' },
];

describe('an open connection keeps its certificate; new handshakes get the new one', () => {
  it.each(PATHS)('$path', async ({ id, servername }) => {
    const f = await echoServer();
    const serverSockets: tls.TLSSocket[] = [];
    f.server.on('secureConnection', (s) => serverSockets.push(s));
    const old = f.serial(id);
    const open = await connectOpen(f.port, { servername, ca: f.root, rejectUnauthorized: true });
    onCleanup(() => void open.destroy());
    expect(open.getPeerCertificate().serialNumber.toLowerCase()).toBe(old);
    expect(await roundTrip(open, 'before')).toBe('before');

    await f.manager.renewNow(id);
    const renewed = f.serial(id);
    expect(renewed).not.toBe(old);

    // A fresh handshake right after renewNow resolves: the new certificate, verified.
    const fresh = await handshake(f.port, { servername, ca: f.root, rejectUnauthorized: true });
    expect(fresh.serial).toBe(renewed);
    expect(fresh.authorized).toBe(true);

    // The open connection: same certificate on both ends, and it still carries data.
    expect(open.getPeerCertificate().serialNumber.toLowerCase()).toBe(old);
    const serverSide = serverSockets[0]!;
    expect((serverSide.getCertificate() as tls.PeerCertificate).serialNumber.toLowerCase()).toBe(old);
    expect(await roundTrip(open, 'after the swap')).toBe('after the swap');
    expect(open.destroyed).toBe(false);
  });
});

/** One client: fresh, fully verified handshakes one after another until `stop()` says so. */
async function handshakeLoop(
  port: number,
  servername: string,
  ca: string,
  stop: (done: number) => boolean,
): Promise<{ done: number; failures: string[]; serials: Set<string> }> {
  const failures: string[] = [];
  const serials = new Set<string>();
  // One client context for all handshakes: building one per connection would dominate the loop.
  const secureContext = tls.createSecureContext({ ca });
  let done = 0;
  while (!stop(done)) {
    await new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        secureContext,
        rejectUnauthorized: true,
      });
      socket.setTimeout(5000, () => socket.destroy(new Error('handshake timeout')));
      socket.once('secureConnect', () => {
        if (!socket.authorized) failures.push(`unauthorized: ${socket.authorizationError}`);
        serials.add(socket.getPeerCertificate().serialNumber.toLowerCase());
        socket.destroy();
        resolve();
      });
      socket.once('error', (error) => {
        failures.push(`${servername}: ${error.message}`);
        resolve();
      });
    });
    done++;
  }
  return { done, failures, serials };
}

describe('no handshake fails while certificates are swapped', () => {
  it('4 clients, 200+ verified handshakes each, during 20 renewals in a row', async () => {
    const f = await echoServer();
    const swaps: ManagerEvents['swapped'][0][] = [];
    const failed: string[] = [];
    f.manager.on('swapped', (e) => swaps.push(e));
    f.manager.on('renewalFailed', (e) => failed.push(e.error.message));
    f.manager.on('rolledBack', (e) => failed.push(e.reason.message));
    const issued = { web: new Set([f.serial('web')]), wild: new Set([f.serial('wild')]) };

    let renewing = true;
    // Each client keeps going while renewals run, at least 200 and at most 1,000 handshakes.
    const stop = (done: number) => done >= 1_000 || (!renewing && done >= 200);
    const clients = [
      handshakeLoop(f.port, 'localhost', f.root, stop),
      handshakeLoop(f.port, 'localhost', f.root, stop),
      handshakeLoop(f.port, 'x.api.test', f.root, stop),
      handshakeLoop(f.port, 'x.api.test', f.root, stop),
    ];
    const renewals = (async () => {
      try {
        for (let i = 0; i < 20; i++) {
          const id = i % 2 === 0 ? 'web' : 'wild';
          await f.manager.renewNow(id);
          issued[id].add(f.serial(id));
        }
      } finally {
        renewing = false;
      }
    })();
    await renewals;
    const results = await Promise.all(clients);

    expect(failed).toEqual([]);
    expect(swaps).toHaveLength(20);
    for (const swap of swaps) expect(swap).toMatchObject({ servers: 1, verified: 1 });
    expect(issued.web.size).toBe(11);
    expect(issued.wild.size).toBe(11);

    expect(results.flatMap((r) => r.failures)).toEqual([]);
    for (const r of results) expect(r.done).toBeGreaterThanOrEqual(200);
    const seen = (from: typeof results) => new Set(from.flatMap((r) => [...r.serials]));
    const webSeen = seen(results.slice(0, 2));
    const wildSeen = seen(results.slice(2));
    // Handshakes overlapped the renewals: several generations were served for each name, and
    // each name only ever got its own certificates.
    expect(webSeen.size).toBeGreaterThanOrEqual(4);
    expect(wildSeen.size).toBeGreaterThanOrEqual(4);
    for (const serial of webSeen) expect(issued.web.has(serial)).toBe(true);
    for (const serial of wildSeen) expect(issued.wild.has(serial)).toBe(true);
    // ~1,000 handshakes and 20 renewals: a loaded CI machine needs more than the default bound.
  }, 120_000);
});

describe('sessions resume across a swap', () => {
  const CASES = [
    { version: 'TLSv1.3', ...PATHS[0]! },
    { version: 'TLSv1.3', ...PATHS[1]! },
    { version: 'TLSv1.2', ...PATHS[0]! },
    { version: 'TLSv1.2', ...PATHS[1]! },
  ] as const;

  it.each(CASES)('$version, $path', async ({ version, id, servername }) => {
    const f = await echoServer();
    const options = {
      servername,
      ca: f.root,
      rejectUnauthorized: true,
      minVersion: version,
      maxVersion: version,
    };
    const first = await handshake(f.port, options);
    expect(first.session, 'a session ticket before the swap').toBeDefined();
    expect(first.reused).toBe(false);

    await f.manager.renewNow(id);
    const resumed = await handshake(f.port, { ...options, session: first.session });
    expect(resumed.reused).toBe(true);
    // A client with nothing to resume gets the new certificate.
    expect((await handshake(f.port, options)).serial).toBe(f.serial(id));
  });

  it('sessions issued before attach() resume after attach and a swap', async () => {
    const f = await startManager(CERTIFICATES);
    const initial = f.manager.credentials('web')!;
    const server = tls.createServer({ key: initial.key.toPem(), cert: initial.chainPem }, (s) => s.pipe(s));
    const port = await serve(server);
    const options = { servername: 'localhost', ca: f.root, rejectUnauthorized: true };
    const first = await handshake(port, options);
    expect(first.session).toBeDefined();
    f.manager.attach(server);
    await f.manager.renewNow('web');
    expect((await handshake(port, { ...options, session: first.session })).reused).toBe(true);
    expect((await handshake(port, options)).serial).toBe(servedSerial(f.manager, 'web'));
  });

  // Without certkeeper: a server swapped by hand. Node keeps ticketKeys once they have been
  // passed, so each variant gets its own fresh server.
  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    'control, %s: a raw setSecureContext without ticketKeys breaks resumption',
    async (version) => {
      const f = await startManager(CERTIFICATES);
      const credentials = () => {
        const c = f.manager.credentials('web')!;
        return { key: c.key.toPem(), cert: c.chainPem };
      };
      const options = { servername: 'localhost', ca: f.root, rejectUnauthorized: true, maxVersion: version };
      const swapByHand = async (withKeys: boolean) => {
        const server = tls.createServer(credentials(), (s) => s.pipe(s));
        const port = await serve(server);
        const before = await handshake(port, options);
        expect(before.session).toBeDefined();
        await f.manager.renewNow('web');
        server.setSecureContext({
          ...credentials(),
          ...(withKeys ? { ticketKeys: server.getTicketKeys() } : {}),
        });
        const after = await handshake(port, { ...options, session: before.session });
        if (!after.reused) expect(after.serial).toBe(servedSerial(f.manager, 'web'));
        return after.reused;
      };
      expect(await swapByHand(false)).toBe(false);
      // The same swap passing the ticket keys again resumes: the keys are the only variable.
      expect(await swapByHand(true)).toBe(true);
    },
  );
});

describe('the private key never shows on the server object', () => {
  it('after attach and swaps, inspecting or listing the server shows no key material', async () => {
    const f = await startManager();
    const server = createHttpsServer(f.manager, {}, (_req, res) => res.end('ok'));
    await serve(server);
    await f.manager.renewNow('web');
    await f.manager.renewNow('web');
    const fields = server as unknown as Record<string, unknown>;
    // Node still has it (it rebuilds contexts from it)...
    expect(String(fields.key)).toContain('PRIVATE KEY');
    // ...but nothing that lists or prints the server shows it.
    expect(Object.keys(server)).not.toContain('key');
    expect(inspect(server, { depth: 1 })).not.toMatch(/PRIVATE KEY/);
  });
});
