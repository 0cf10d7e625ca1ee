// One managed certificate, one object (issue 14): its phase follows what it serves and what its
// attempts do, it alone changes its state, and the manager's set of them grows and shrinks while
// running, with real handshakes.
import type https from 'node:https';
import { EventEmitter } from 'eventemitter3';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { ManagedCertificate } from '../../src/manager/managed-certificate.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { resolveOptions } from '../../src/manager/options.js';
import { Runtime } from '../../src/manager/runtime.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const managers: CertificateManager[] = [];
const servers: https.Server[] = [];
const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) rt.end();
  await Promise.all(managers.splice(0).map((m) => m.stop()));
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

function certificate(store = new MemoryStore(), issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 })) {
  const options = resolveOptions({
    store,
    issuer,
    certificates: [{ id: 'web', names: ['web.test'] }],
    logger: silent,
    reconcileIntervalMs: 0,
  });
  const events = new EventEmitter<ManagerEvents>();
  const rt = new Runtime(options, events, async () => {});
  runtimes.push(rt);
  rt.begin();
  const cert = new ManagedCertificate(options.certificates[0]!, rt);
  return { cert, rt, events, issuer, store };
}

describe('ManagedCertificate', () => {
  it('moves loading → renewing → serving, and serves what it obtained from the cache handshakes read', async () => {
    const { cert, rt } = certificate();
    expect(cert.phase).toBe('loading');
    await cert.load(true);
    expect(cert.phase).toBe('loading'); // nothing stored: nothing served yet
    const attempt = cert.obtain('missing');
    expect(cert.phase).toBe('renewing');
    expect(cert.renewing).toBe(true);
    expect(await attempt).toBeUndefined();
    expect(cert.phase).toBe('serving');
    expect(cert.isReady).toBe(true);
    expect(rt.cache.current('web')).toBe(cert.current);
    expect(cert.status(Date.now())).toMatchObject({
      id: 'web',
      state: 'valid',
      renewing: false,
      failures: 0,
    });
  });

  it('is failed when nothing is served and its attempt failed, and serving again after a success', async () => {
    const { cert, issuer } = certificate();
    issuer.fault = 'down';
    const failure = await cert.obtain('missing');
    expect(failure?.code).toBe('ISSUER_UNAVAILABLE');
    expect(cert.phase).toBe('failed');
    expect(cert.plan.failures).toBe(1);
    expect(cert.status(Date.now())).toMatchObject({
      state: 'missing',
      lastError: { code: 'ISSUER_UNAVAILABLE' },
    });
    issuer.fault = null;
    expect(await cert.obtain('retry')).toBeUndefined();
    expect(cert.phase).toBe('serving');
    expect(cert.plan.failures).toBe(0);
  });

  it('a failed renewal keeps it serving the previous certificate', async () => {
    const { cert, issuer } = certificate();
    await cert.obtain('missing');
    const served = cert.current!.info.serialNumber;
    issuer.fault = 'down';
    expect((await cert.obtain('forced'))?.code).toBe('ISSUER_UNAVAILABLE');
    expect(cert.phase).toBe('serving');
    expect(cert.current!.info.serialNumber).toBe(served);
    expect(cert.plan.lastError?.code).toBe('ISSUER_UNAVAILABLE');
  });

  it('one renewal emits obtaining once and renewed once, and loads what another object committed', async () => {
    const store = new MemoryStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const first = certificate(store, issuer);
    const seen: string[] = [];
    for (const name of ['obtaining', 'obtained', 'renewed', 'swapped', 'renewalFailed'] as const)
      first.events.on(name, () => seen.push(name));
    await first.cert.obtain('missing');
    await first.cert.obtain('forced');
    expect(seen).toEqual(['obtaining', 'swapped', 'obtained', 'obtaining', 'swapped', 'renewed']);
    // A second object over the same store (a restart) loads the committed certificate, orders nothing.
    const second = certificate(store, issuer);
    const calls = issuer.calls;
    await second.cert.load(true);
    expect(second.cert.phase).toBe('serving');
    expect(second.cert.current!.info.serialNumber).toBe(first.cert.current!.info.serialNumber);
    expect(issuer.calls).toBe(calls);
  });

  it('removed: stopped, and nothing more is scheduled for it', async () => {
    const { cert, rt } = certificate();
    await cert.obtain('missing');
    expect(rt.scheduler.dueAt('web')).toBeDefined();
    rt.scheduler.delete('web');
    cert.remove();
    expect(cert.phase).toBe('stopped');
    cert.schedule();
    expect(rt.scheduler.dueAt('web')).toBeUndefined();
  });
});

describe('the manager’s set of certificates grows and shrinks while running', () => {
  it('a certificate removed and added again is loaded from the store, not ordered again, and served by SNI', async () => {
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      certificates: [{ id: 'web', names: ['localhost'] }],
      logger: silent,
      reconcileIntervalMs: 0,
    });
    managers.push(manager);
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    servers.push(server);
    await manager.start();
    const port = await listen(server);
    await manager.ready();

    manager.manage({ id: 'api', names: ['api.test'] });
    await manager.ready(['api']);
    const api = manager.certificate('api')!;
    expect((await handshake(port, { servername: 'api.test' })).serial).toBe(api.serial);

    manager.unmanage('api');
    expect(manager.status().map((s) => s.id)).toEqual(['web']);
    expect(manager.lookup('api.test')).toBeUndefined();
    await expect(manager.renewNow('api')).rejects.toMatchObject({ code: 'UNKNOWN_CERTIFICATE' });
    // The server's own certificate answers a name no managed certificate has any more.
    expect((await handshake(port, { servername: 'api.test' })).serial).toBe(
      manager.certificate('web')!.serial,
    );

    const calls = issuer.calls;
    manager.manage({ id: 'api', names: ['api.test'] });
    await manager.ready(['api']);
    expect(issuer.calls).toBe(calls);
    expect(manager.certificate('api')!.serial).toBe(api.serial);
    expect((await handshake(port, { servername: 'api.test' })).serial).toBe(api.serial);
  });
});
