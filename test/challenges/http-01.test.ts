// HTTP-01 answers from the store, in every server shape users have: plain http, Express,
// Fastify, and the standalone listener that redirects everything else to HTTPS. Answers are sealed
// like private keys, so a writer of a shared store without the encryption keys cannot plant one
// (planted in a real Redis, own prefix).
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttp01Handler, Http01Solver, startHttp01Server } from '../../src/challenges/http-01.js';
import { systemClock } from '../../src/clock.js';
import type { IssuerContext } from '../../src/issuers/issuer.js';
import { silentLogger } from '../../src/logger.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { redisPeer } from '../support/services.js';

const redisUrl = await redisPeer();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const task = {
  type: 'http-01' as const,
  identifier: { type: 'dns' as const, value: 'a.test' },
  wildcard: false,
  token: 'tok_EN-123',
  keyAuthorization: 'tok_EN-123.thumb',
};

function context(store: Store): IssuerContext {
  return { store, clock: systemClock, logger: silentLogger, signal: new AbortController().signal };
}

async function get(port: number, path: string, method = 'GET') {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, redirect: 'manual' });
  return { status: response.status, body: await response.text(), location: response.headers.get('location') };
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((r) => server.close(r)));
  return (server.address() as AddressInfo).port;
}

/**
 * The checks every integration must pass: answer, removal after cleanup, and a token the store
 * does not hold never answered with a key authorization (it goes to the app, or 404 without one).
 */
async function behaves(port: number, store: MemoryStore, otherPath = '/hello') {
  const solver = new Http01Solver();
  await solver.present(task, context(store));
  // Three concurrent fetches, like Pebble's validation attempts.
  const answers = await Promise.all(
    [1, 2, 3].map(() => get(port, `/.well-known/acme-challenge/${task.token}`)),
  );
  for (const a of answers) expect(a).toMatchObject({ status: 200, body: task.keyAuthorization });
  for (const path of ['unknown-token', '..%2F..%2Fetc']) {
    const answer = await get(port, `/.well-known/acme-challenge/${path}`);
    expect(answer.body).not.toContain(task.keyAuthorization);
    expect([404, 200]).toContain(answer.status);
  }
  expect((await get(port, otherPath)).body).toBe('app');
  await solver.cleanup(task, context(store));
  expect((await get(port, `/.well-known/acme-challenge/${task.token}`)).body).not.toContain(
    task.keyAuthorization,
  );
}

describe('HTTP-01', () => {
  it('plugs into a plain node:http server', async () => {
    const store = new MemoryStore();
    const handler = createHttp01Handler(store);
    const port = await listen(http.createServer((req, res) => handler(req, res, () => res.end('app'))));
    await behaves(port, store);
  });

  it('two managers and another ACME client share one port-80 listener: a token a handler does not hold goes on', async () => {
    const [a, b] = [new MemoryStore(), new MemoryStore()];
    const other = { token: 'other-client-token', keyAuthorization: 'other-client-token.thumb' };
    const first = createHttp01Handler(a);
    const second = createHttp01Handler(b);
    const port = await listen(
      http.createServer((req, res) =>
        first(req, res, () =>
          second(req, res, () => {
            // Another ACME client's own handler, last in the chain.
            if (req.url === `/.well-known/acme-challenge/${other.token}`) res.end(other.keyAuthorization);
            else res.writeHead(404).end('nobody holds it');
          }),
        ),
      ),
    );
    const tokenA = { ...task, token: 'token-of-a', keyAuthorization: 'token-of-a.thumb' };
    const tokenB = { ...task, token: 'token-of-b', keyAuthorization: 'token-of-b.thumb' };
    await new Http01Solver().present(tokenA, context(a));
    await new Http01Solver().present(tokenB, context(b));
    for (const t of [tokenA, tokenB, other]) {
      expect(await get(port, `/.well-known/acme-challenge/${t.token}`)).toMatchObject({
        status: 200,
        body: t.keyAuthorization,
      });
    }
    expect(await get(port, '/.well-known/acme-challenge/nobody')).toMatchObject({
      status: 404,
      body: 'nobody holds it',
    });
  });

  it('without next: 404 for a token it does not hold, 503 when the store cannot be read', async () => {
    const store = new MemoryStore();
    const handler = createHttp01Handler(store);
    const port = await listen(http.createServer((req, res) => handler(req, res)));
    expect((await get(port, '/.well-known/acme-challenge/unknown-token')).status).toBe(404);
    await store.close();
    expect((await get(port, '/.well-known/acme-challenge/unknown-token')).status).toBe(503);
  });

  it('plugs into Express as middleware', async () => {
    const store = new MemoryStore();
    const app = express();
    app.use(createHttp01Handler(store));
    app.get('/hello', (_req, res) => {
      res.send('app');
    });
    const port = await listen(http.createServer(app));
    await behaves(port, store);
  });

  it('plugs into Fastify as a route', async () => {
    const store = new MemoryStore();
    const handler = createHttp01Handler(store);
    const app = Fastify();
    app.get('/.well-known/acme-challenge/:token', (request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
    app.get('/hello', async () => 'app');
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    await behaves((app.server.address() as AddressInfo).port, store);
  });

  it('the standalone listener answers challenges and redirects the rest to HTTPS', async () => {
    const store = new MemoryStore();
    const listener = await startHttp01Server({ store, port: 0, host: '127.0.0.1', httpsPort: 8443 });
    closers.push(() => listener.close());
    await new Http01Solver().present(task, context(store));
    expect(await get(listener.port, `/.well-known/acme-challenge/${task.token}`)).toMatchObject({
      status: 200,
      body: task.keyAuthorization,
    });
    const redirect = await get(listener.port, '/some/page?q=1');
    expect(redirect.status).toBe(301);
    expect(redirect.location).toBe('https://127.0.0.1:8443/some/page?q=1');
    // POST to a challenge path is not a validation.
    expect((await get(listener.port, `/.well-known/acme-challenge/${task.token}`, 'POST')).status).toBe(301);
    // A challenge nobody holds is a 404 here, not a redirect.
    expect((await get(listener.port, '/.well-known/acme-challenge/unknown-token')).status).toBe(404);
  });

  it('refuses to put a forged Host header into a redirect', async () => {
    const store = new MemoryStore();
    const listener = await startHttp01Server({ store, port: 0, host: '127.0.0.1' });
    closers.push(() => listener.close());
    const status = await new Promise<number>((resolve) => {
      http.get(
        { host: '127.0.0.1', port: listener.port, path: '/', headers: { host: 'evil.test/@x' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
    });
    expect(status).toBe(400);
  });

  it('wildcards are not HTTP-01 material', () => {
    expect(new Http01Solver().supports({ type: 'dns', value: 'a.test' }, true)).toBe(false);
    expect(new Http01Solver().supports({ type: 'ip', value: '127.0.0.1' }, false)).toBe(true);
  });
});

describe('HTTP-01 answers are sealed in the store', () => {
  // Where a writer of the store would plant an answer: the key earlier versions used, and the one
  // the answer lives at now.
  const plantKeys = (token: string) => [`challenges/http-01/${token}`, `challenges/http-01/${token}.key`];

  it('an answer in the format of earlier versions is ignored', async () => {
    const store = new MemoryStore();
    const handler = createHttp01Handler(store);
    const port = await listen(http.createServer((req, res) => handler(req, res)));
    await store.put(`challenges/http-01/${task.token}`, task.keyAuthorization);
    expect(await get(port, `/.well-known/acme-challenge/${task.token}`)).toMatchObject({ status: 404 });
    // What the solver writes is answered.
    await new Http01Solver().present(task, context(store));
    expect(await get(port, `/.well-known/acme-challenge/${task.token}`)).toMatchObject({
      status: 200,
      body: task.keyAuthorization,
    });
  });

  it.skipIf(!redisUrl)(
    'Redis with encryption keys: the answer is sealed at rest, and a writer without the keys cannot plant one',
    async () => {
      const prefix = `certkeeper-test-http01-${randomUUID()}`;
      const randomKey = randomBytes(32).toString('base64');
      const open = (keys: boolean) =>
        new RedisStore({
          url: redisUrl!,
          prefix,
          encryption: keys ? { keys: [randomKey] } : 'none',
          logger: quiet,
        });
      const store = open(true);
      const writer = open(false);
      const admin = new Redis(redisUrl!, { lazyConnect: true });
      closers.push(async () => {
        await store.close();
        await writer.close();
        const keys = await admin.keys(`${prefix}:*`);
        if (keys.length > 0) await admin.del(...keys);
        await admin.quit();
      });
      const handler = createHttp01Handler(store);
      const port = await listen(http.createServer((req, res) => handler(req, res)));

      // The fleet's own answer: served, and sealed at rest.
      await new Http01Solver().present(task, context(store));
      expect(await get(port, `/.well-known/acme-challenge/${task.token}`)).toMatchObject({
        status: 200,
        body: task.keyAuthorization,
      });
      const stored = await admin.keys(`${prefix}:v:challenges/http-01/*`);
      expect(stored).toHaveLength(1);
      const raw = (await admin.hgetBuffer(stored[0]!, 'd'))!;
      expect(raw.subarray(0, 3).toString('latin1')).toBe('CKE');
      expect(raw.toString('latin1')).not.toContain(task.keyAuthorization);

      // The attack: a token of the attacker's own order at a CA, answered by the fleet's listener.
      const planted = {
        token: 'attacker-order-token',
        keyAuthorization: 'attacker-order-token.attacker-thumb',
      };
      for (const key of plantKeys(planted.token)) await writer.put(key, planted.keyAuthorization);
      const answer = await get(port, `/.well-known/acme-challenge/${planted.token}`);
      expect(answer.body).not.toContain(planted.keyAuthorization);
      expect(answer.status).toBe(404);
    },
  );
});
