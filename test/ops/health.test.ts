// Health: /healthz says the process answers; /readyz says every certificate is served, verified
// and not about to expire, and turns false on an expired (or expiring) certificate, not only on a
// missing one. The same handler works from plain http, Express and Fastify.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { health } from '../../src/ops/health.js';
import { createHealthHandler } from '../../src/ops/health-handler.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3_600_000;
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function running(options: { clock?: FakeClock; ids?: string[] } = {}) {
  const issuer = new SwitchableIssuer({ lifetimeMs: HOUR });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    certificates: (options.ids ?? ['web']).map((id) => ({ id, names: [`${id}.test`] })),
    logger: quiet,
    reconcileIntervalMs: 0,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  cleanup.push(() => manager.stop());
  return { manager, issuer };
}

async function serveHttp(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(url: string, method = 'GET') {
  const response = await fetch(url, { method });
  const body = await response.text();
  const isJson = response.headers.get('content-type')?.startsWith('application/json');
  return {
    status: response.status,
    body: body ? (isJson ? JSON.parse(body) : body) : null,
    headers: response.headers,
  };
}

describe('/readyz under a FakeClock', () => {
  it('is ready while the certificate is fresh, then not: expiring within the margin, then expired', async () => {
    const clock = new FakeClock();
    const { manager, issuer } = await running({ clock });
    const handler = createHealthHandler(manager, { clock, expiryMarginMs: 5 * 60_000 });
    const base = await serveHttp(http.createServer(handler));
    expect((await get(`${base}/readyz`)).status).toBe(503); // nothing obtained yet
    await manager.start();
    await clock.advance(0); // obtaining is due "now": on a FakeClock, now happens when the test says
    await manager.ready();
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      ready: true,
      certificates: [{ id: 'web', ready: true, reason: null }],
    });
    expect(ready.headers.get('cache-control')).toBe('no-store');

    issuer.fault = 'down'; // renewals fail from now on: the certificate ages
    const notAfter = manager.status()[0]!.notAfter!.getTime();
    const failed = nextEvent(manager, 'renewalFailed');
    await clock.advance(notAfter - clock.now() - 4 * 60_000);
    await failed;
    const expiring = await get(`${base}/readyz`);
    expect(expiring.status).toBe(503);
    expect(expiring.body.certificates[0]).toMatchObject({
      id: 'web',
      ready: false,
      reason: 'expiring',
      lastError: 'ISSUER_UNAVAILABLE',
    });
    await clock.advance(5 * 60_000);
    const expired = await get(`${base}/readyz`);
    expect(expired.status).toBe(503);
    expect(expired.body.certificates[0]).toMatchObject({ reason: 'expired' });
    // /healthz is about the process, which still answers.
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });

    issuer.fault = null;
    await manager.renewNow('web');
    expect((await get(`${base}/readyz`)).status).toBe(200);
  });

  it('caps the margin at a tenth of the lifetime: a one-hour certificate is not "expiring" from birth', async () => {
    const clock = new FakeClock();
    const { manager } = await running({ clock });
    await manager.start();
    await clock.advance(0);
    await manager.ready();
    // Default margin (1 h) is the whole lifetime; a tenth of it (6 min) applies.
    expect(health(manager, { clock }).ready).toBe(true);
    const notAfter = manager.status()[0]!.notAfter!.getTime();
    clock.set(notAfter - 5 * 60_000);
    expect(health(manager, { clock }).certificates[0]).toMatchObject({ ready: false, reason: 'expiring' });
  });
});

describe('health(manager)', () => {
  it('returns the same facts as an object; unknown ids are missing', async () => {
    const { manager } = await running({ ids: ['a', 'b'] });
    await manager.start();
    await manager.ready();
    const report = health(manager);
    expect(report).toMatchObject({ live: true, ready: true });
    expect(report.certificates.map((c) => c.id)).toEqual(['a', 'b']);
    const a = report.certificates[0]!;
    expect(a.serial).toBe(manager.status()[0]!.serial);
    expect(a.notAfter).toBeInstanceOf(Date);
    expect(a.remainingMs).toBeGreaterThan(0);
    const only = health(manager, { certificates: ['a', 'nope'] });
    expect(only.ready).toBe(false);
    expect(only.certificates[1]).toMatchObject({ id: 'nope', ready: false, reason: 'missing' });
  });

  it('a certificate whose live check failed, with nothing verified to fall back to, is not ready', async () => {
    const { manager } = await running({ ids: ['localhost'] });
    const handler = createHealthHandler(manager);
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    // The server ignores new contexts: it never serves what the manager swaps in.
    server.setSecureContext = () => {};
    await listen(server);
    cleanup.push(() => close(server));
    const failed = new Promise((resolve) => manager.once('liveVerifyFailed', resolve));
    await manager.start();
    await failed;
    expect(manager.status()[0]).toMatchObject({ state: 'valid' });
    const response = handler.respond('GET', '/readyz')!;
    expect(response.status).toBe(503);
    expect(JSON.parse(response.body).certificates[0]).toMatchObject({ reason: 'unverified' });
  });
});

describe('the handler from plain http, Express and Fastify', () => {
  async function started(): Promise<CertificateManager> {
    const { manager } = await running();
    await manager.start();
    await manager.ready();
    return manager;
  }

  it('plain http: GET, HEAD, other methods and other paths', async () => {
    const manager = await started();
    const base = await serveHttp(http.createServer(createHealthHandler(manager)));
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 200, body: { ready: true } });
    const head = await get(`${base}/readyz`, 'HEAD');
    expect(head).toMatchObject({ status: 200, body: null });
    expect((await get(`${base}/readyz`, 'POST')).status).toBe(405);
    expect((await get(`${base}/elsewhere`)).status).toBe(404);
  });

  it('Express: app.use(handler), at the root or under a mount path; other routes still answer', async () => {
    const manager = await started();
    const app = express();
    app.use('/ops', createHealthHandler(manager, { details: false }));
    app.use(createHealthHandler(manager));
    app.get('/hello', (_req, res) => {
      res.send('hi');
    });
    const base = await serveHttp(http.createServer(app));
    expect(await get(`${base}/ops/readyz`)).toEqual(
      expect.objectContaining({ status: 200, body: { ready: true } }),
    );
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await get(`${base}/readyz`)).body.certificates[0].id).toBe('web');
    expect(await (await fetch(`${base}/hello`)).text()).toBe('hi');
  });

  it('Fastify: app.register(handler.fastify, { prefix })', async () => {
    const manager = await started();
    const app = Fastify();
    await app.register(createHealthHandler(manager, { livePath: '/live', readyPath: '/ready' }).fastify, {
      prefix: '/ops',
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect(await get(`${base}/ops/live`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await get(`${base}/ops/ready`);
    expect(ready).toMatchObject({ status: 200, body: { ready: true, certificates: [{ id: 'web' }] } });
    expect(ready.headers.get('content-type')).toMatch(/application\/json/);
    expect(await get(`${base}/ops/ready`, 'HEAD')).toMatchObject({ status: 200, body: null });
  });

  it('refuses paths that are not paths', async () => {
    const { manager } = await running();
    expect(() => createHealthHandler(manager, { readyPath: 'readyz' })).toThrow(/readyPath/);
    expect(() => createHealthHandler(manager, { expiryMarginMs: -1 })).toThrow(/expiryMarginMs/);
  });
});
