// attach() on servers certkeeper did not create (a user's own SNICallback stays the fallback,
// detach() restores it) and live verification of each swap (a swap that did not take effect is
// rolled back; a server that is not listening does not block deploys).
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { loadGeneration, readPointer } from '../../src/manager/records.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { nextEvent } from '../support/events.js';
import { selfSigned } from '../support/issuers.js';
import { handshake, opensslServedSerial } from '../support/tls.js';
import { cleanup, serve, servedSerial, startManager } from './harness.js';

afterEach(cleanup);

const CERTIFICATES = [
  { id: 'web', names: ['localhost', '127.0.0.1'] },
  { id: 'wild', names: ['*.api.test'] },
];

async function ownCertificate(name: string) {
  const { key, certificate } = await selfSigned([name]);
  return { key: key.toPem(), cert: certificate.pem, serial: certificate.info.serialNumber.toLowerCase() };
}

describe('attach() to a server with its own SNICallback', () => {
  it('answers managed names, falls through to the user callback for others; detach() restores it', async () => {
    const f = await startManager(CERTIFICATES);
    const own = await ownCertificate('own.test');
    const user = await ownCertificate('user.test');
    const userContext = tls.createSecureContext({ key: user.key, cert: user.cert });
    const asked: string[] = [];
    let thisIsSocket = true;
    const server = tls.createServer(
      {
        key: own.key,
        cert: own.cert,
        SNICallback(this: unknown, servername, cb) {
          asked.push(servername);
          thisIsSocket &&= this instanceof tls.TLSSocket;
          cb(null, userContext);
        },
      },
      (socket) => socket.end(),
    );
    const port = await serve(server);
    const serial = (servername?: string) => handshake(port, { servername }).then((s) => s.serial);
    expect(await serial('localhost')).toBe(user.serial);
    expect(await serial()).toBe(own.serial);
    asked.length = 0;

    const attachment = f.manager.attach(server);
    expect(await serial('localhost')).toBe(servedSerial(f.manager, 'web'));
    expect(await serial('x.api.test')).toBe(servedSerial(f.manager, 'wild'));
    expect(await opensslServedSerial(port, 'x.api.test')).toBe(servedSerial(f.manager, 'wild'));
    expect(await serial('user.test')).toBe(user.serial);
    expect(await opensslServedSerial(port, 'elsewhere.test')).toBe(user.serial);
    // Without SNI: the server's own context, now certkeeper's default certificate.
    expect(await serial()).toBe(servedSerial(f.manager, 'web'));
    expect(asked).toEqual(['user.test', 'elsewhere.test']);
    expect(thisIsSocket).toBe(true);

    // A swap while attached reaches this server.
    await f.manager.renewNow('wild');
    expect(await serial('x.api.test')).toBe(servedSerial(f.manager, 'wild'));

    f.manager.detach(attachment);
    asked.length = 0;
    expect(await serial('x.api.test')).toBe(user.serial);
    expect(await serial('localhost')).toBe(user.serial);
    expect(asked).toEqual(['x.api.test', 'localhost']);
    // Detached: later swaps no longer touch the server.
    const kept = await serial();
    const swapped = nextEvent(f.manager, 'swapped');
    await f.manager.renewNow('web');
    expect((await swapped).servers).toBe(0);
    expect(await serial()).toBe(kept);
    expect(kept).not.toBe(servedSerial(f.manager, 'web'));
  });

  it('detach() from a server without SNICallback restores Node’s default SNI handling', async () => {
    const f = await startManager(CERTIFICATES);
    const own = await ownCertificate('own.test');
    const server = tls.createServer({ key: own.key, cert: own.cert }, (socket) => socket.end());
    const port = await serve(server);
    f.manager.attach(server);
    expect((await handshake(port, { servername: 'x.api.test' })).serial).toBe(
      servedSerial(f.manager, 'wild'),
    );
    f.manager.detach(server);
    // Node's own SNI handling: the server context for every name (certkeeper's last default).
    expect((await handshake(port, { servername: 'x.api.test' })).serial).toBe(servedSerial(f.manager, 'web'));
  });
});

describe('live verification', () => {
  it('a swap that does not take effect is detected, rolled back, and the old certificate kept', async () => {
    const { manager, store, issuer } = await startManager(CERTIFICATES);
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    const port = await serve(server);
    const before = servedSerial(manager, 'web');
    // Sabotage: the server ignores every new context.
    server.setSecureContext = () => {};
    const events: { name: keyof ManagerEvents; payload: unknown }[] = [];
    for (const name of ['liveVerifyFailed', 'rolledBack', 'swapped', 'renewed', 'renewalFailed'] as const)
      manager.on(name, (payload: unknown) => events.push({ name, payload }));

    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'LIVE_VERIFY_FAILED' });

    expect(events.map((e) => e.name)).toEqual(['liveVerifyFailed', 'rolledBack', 'renewalFailed']);
    const failed = events[0]!.payload as ManagerEvents['liveVerifyFailed'][0];
    const rolledBack = events[1]!.payload as ManagerEvents['rolledBack'][0];
    expect(failed.error.code).toBe('LIVE_VERIFY_FAILED');
    expect(failed.error.details).toMatchObject({ expected: failed.expected, servername: 'localhost' });
    expect(rolledBack).toMatchObject({ id: 'web', servingSerial: before });
    expect(rolledBack.rejectedSerial).not.toBe(before);

    // Still serving the previous certificate, by SNI and without.
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(before);
    expect((await handshake(port)).serial).toBe(before);
    const status = manager.status().find((s) => s.id === 'web')!;
    expect(status).toMatchObject({ serial: before, failures: 1 });
    expect(status.lastError?.code).toBe('LIVE_VERIFY_FAILED');
    expect((await readPointer(store, issuer.id, 'web'))?.serial.toLowerCase()).toBe(before);

    // Once the server takes swaps again, the next renewal goes through.
    Reflect.deleteProperty(server, 'setSecureContext');
    await manager.renewNow('web');
    expect(servedSerial(manager, 'web')).not.toBe(before);
    expect((await handshake(port)).serial).toBe(servedSerial(manager, 'web'));
    expect(manager.status().find((s) => s.id === 'web')!.lastError).toBeNull();
  });

  it('a server that is attached but not listening does not block deploys', async () => {
    const { manager, store, issuer } = await startManager(CERTIFICATES);
    const initial = manager.credentials('web')!;
    const server = tls.createServer({ key: initial.key.toPem(), cert: initial.chainPem }, (s) => s.end());
    const attachment = manager.attach(server);
    const swapped = nextEvent(manager, 'swapped');
    const verifyFailed: unknown[] = [];
    manager.on('liveVerifyFailed', (e) => verifyFailed.push(e));

    await manager.renewNow('web');
    expect(await swapped).toMatchObject({ id: 'web', servers: 1, verified: 0 });
    expect(verifyFailed).toEqual([]);
    const meta = (await readPointer(store, issuer.id, 'web'))!;
    const generation = await loadGeneration(store, issuer.id, 'web', meta);
    expect(generation.info.serialNumber.toLowerCase()).toBe(servedSerial(manager, 'web'));
    expect(await attachment.verify('web', generation)).toBeNull();

    // The swap did take effect: once listening, the server serves it and verify() checks it.
    const port = await serve(server);
    expect((await handshake(port)).serial).toBe(servedSerial(manager, 'web'));
    expect(await attachment.verify('web', generation)).toMatchObject({
      fingerprint256: generation.info.fingerprint256,
    });
  });
});
