// The status page's handler without a browser: its JSON (most urgent first, bounded by `limit`),
// its headers (CSP, no framing, no caching), its event stream (a `change` after renewNow, bounded
// number of streams), and the same handler mounted in Fastify.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createStatusPage, type StatusPage } from '../../src/ops/status-page.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

type PageJson = { total: number; certificates: ({ id: string } & Record<string, unknown>)[] };
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function running(ids = ['a', 'b', 'c']) {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  issuer.fault = 'down';
  issuer.faultNames = ['c.test'];
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    certificates: ids.map((id) => ({ id, names: [`${id}.test`] })),
    logger: quiet,
    reconcileIntervalMs: 0,
  });
  cleanup.push(() => manager.stop());
  const failed = new Promise((resolve) => manager.once('renewalFailed', resolve));
  await manager.start();
  await manager.ready({ ids: ids.filter((id) => id !== 'c') });
  await failed;
  return { manager, issuer };
}

async function serve(page: StatusPage) {
  const server = http.createServer(page);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  cleanup.push(() => page.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Reads an event stream until an event named `name` arrives (bounded by `ms`). */
function nextStreamEvent(
  url: string,
  name: string,
  ms = 15_000,
): Promise<{ opened: Promise<void>; event: Promise<string> }> {
  return new Promise((resolveOuter) => {
    let opened!: () => void;
    const openedP = new Promise<void>((r) => {
      opened = r;
    });
    const event = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${name} event within ${ms} ms`)), ms);
      const req = http.get(url, (res) => {
        let buffer = '';
        res.setEncoding('utf8');
        opened();
        res.on('data', (chunk: string) => {
          buffer += chunk;
          const match = new RegExp(`event: ${name}\\ndata: (.*)\\n\\n`).exec(buffer);
          if (match) {
            clearTimeout(timer);
            req.destroy();
            resolve(match[1]!);
          }
        });
      });
      req.on('error', () => {});
    });
    resolveOuter({ opened: openedP, event });
  });
}

describe('createStatusPage: the handler', () => {
  it('serves status.json: every certificate, the not-ready first, with timeline, state and last error', async () => {
    const { manager } = await running();
    const base = await serve(createStatusPage(manager));
    const response = await fetch(`${base}/status.json`);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as PageJson;
    expect(body).toMatchObject({ title: 'certkeeper', ready: false, total: 3, shown: 3 });
    expect(body.certificates[0]).toMatchObject({
      id: 'c',
      ready: false,
      reason: 'missing',
      serial: null,
      failures: 1,
      lastError: { code: 'ISSUER_UNAVAILABLE', message: 'test issuer is down' },
    });
    const a = manager.status().find((s) => s.id === 'a')!;
    expect(body.certificates.find((c) => c.id === 'a')).toMatchObject({
      ready: true,
      reason: null,
      state: 'valid',
      serial: a.serial,
      notBefore: a.notBefore!.toISOString(),
      notAfter: a.notAfter!.toISOString(),
      nextRenewalAt: a.nextRenewalAt!.toISOString(),
      names: ['a.test'],
      purpose: 'server',
    });
  });

  it('lists at most `limit` certificates, the most urgent', async () => {
    const { manager } = await running();
    const base = await serve(createStatusPage(manager, { limit: 1 }));
    const body = (await (await fetch(`${base}/status.json`)).json()) as PageJson;
    expect(body).toMatchObject({ total: 3, shown: 1, certificates: [{ id: 'c' }] });
  });

  it('serves the page with a CSP that allows only its own script and style, unframable', async () => {
    const { manager } = await running();
    const base = await serve(createStatusPage(manager, { title: '<script>alert(1)</script>' }));
    const response = await fetch(`${base}/`);
    const html = await response.text();
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(html).toContain('<title>&#60;script&#62;alert(1)&#60;/script&#62;</title>');
    expect(html).not.toContain('<script>alert(1)');
    expect((await fetch(`${base}/status.json`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
  });

  it('announces changes on its event stream (after renewNow), and bounds the number of streams', async () => {
    const { manager } = await running();
    const base = await serve(createStatusPage(manager, { maxStreams: 1 }));
    const { opened, event } = await nextStreamEvent(`${base}/events`, 'change');
    await opened;
    expect((await fetch(`${base}/events`)).status).toBe(503);
    await manager.renewNow('a');
    expect(JSON.parse(await event)).toMatchObject({ id: 'a' });
  });

  it('mounts in Fastify: page, JSON and events', async () => {
    const { manager } = await running();
    const page = createStatusPage(manager);
    cleanup.push(() => page.close());
    const app = Fastify();
    await app.register(page.fastify, { prefix: '/status' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/status`;
    const html = await fetch(`${base}/`);
    expect(html.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await html.text()).toContain('<ol id="certificates"');
    expect(((await (await fetch(`${base}/status.json`)).json()) as PageJson).total).toBe(3);
    const { opened, event } = await nextStreamEvent(`${base}/events`, 'change');
    await opened;
    await manager.renewNow('b');
    expect(JSON.parse(await event)).toMatchObject({ id: 'b' });
  });
});
