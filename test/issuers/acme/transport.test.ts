// The ACME transport on the bounded HTTPS client, against real servers on loopback: a CA
// trickling its answer, a CA handing over a plain http: URL, an attempt given up mid-request,
// and connections kept alive across the requests of an order.
import http from 'node:http';
import https from 'node:https';
import { afterEach, expect, it } from 'vitest';
import { AcmeTransport, withSignal } from '../../../src/issuers/acme/transport.js';
import { makePki } from '../../support/pki.js';
import { listen } from '../../support/tls.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function acme(handler: http.RequestListener) {
  const pki = await makePki({ names: ['127.0.0.1', 'localhost'] });
  let connections = 0;
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, handler);
  server.on('secureConnection', () => connections++);
  const port = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { ca: pki.rootPem, url: `https://127.0.0.1:${port}`, connections: () => connections };
}

function transport(options: ConstructorParameters<typeof AcmeTransport>[0]) {
  const t = new AcmeTransport(options);
  cleanups.push(() => t.close());
  return t;
}

it('a CA trickling its answer a byte at a time is cut off at the request timeout (ISSUER_UNAVAILABLE)', async () => {
  const ca = await acme((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 20);
    res.on('close', () => clearInterval(timer));
  });
  const t = transport({ ca: ca.ca, timeoutMs: 300 });
  await expect(t.request(`${ca.url}/directory`, 'get')).rejects.toMatchObject({
    code: 'ISSUER_UNAVAILABLE',
    details: { reason: 'timeout' },
  });
}, 10_000);

it('an http: URL handed over by an https CA is refused without a request (ISSUER_FAILED) unless allowHttp', async () => {
  const requests: string[] = [];
  const plain = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  const port = await listen(plain as never);
  cleanups.push(() => new Promise((r) => plain.close(r)));
  const downgraded = `http://127.0.0.1:${port}/acme/new-order`;
  await expect(transport({}).request(downgraded, 'post', { data: '{}' })).rejects.toMatchObject({
    code: 'ISSUER_FAILED',
    details: { reason: 'insecure' },
  });
  expect(requests).toEqual([]);
  expect((await transport({ allowHttp: true }).request(downgraded, 'post', { data: '{}' })).status).toBe(200);
  expect(requests).toEqual(['/acme/new-order']);
});

it("the attempt's signal ends a request in flight; the requests of an order share one kept-alive connection", async () => {
  const controller = new AbortController();
  const ca = await acme((req, res) => {
    if (req.url === '/hang') {
      controller.abort(new Error('attempt given up'));
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.setHeader('replay-nonce', `n-${req.url}`);
    res.end('{"ok":true}');
  });
  const t = transport({ ca: ca.ca });
  await expect(withSignal(controller.signal, () => t.request(`${ca.url}/hang`, 'get'))).rejects.toMatchObject(
    {
      code: 'ISSUER_UNAVAILABLE',
      details: { reason: 'aborted' },
    },
  );
  const before = ca.connections();
  for (const path of ['/a', '/b', '/c'])
    expect((await t.request(`${ca.url}${path}`, 'get')).data).toEqual({ ok: true });
  expect(ca.connections() - before).toBe(1);
  expect(t.takeNonce()).toBe('n-/c');
});
