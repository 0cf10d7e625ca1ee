// The step-ca transport on the bounded HTTPS client, against CAs that misbehave at the HTTP
// level: one trickling its answer, one presenting a chain of another root, one cut mid-answer.
import https from 'node:https';
import { afterEach, expect, it } from 'vitest';
import { caRequest } from '../../../src/issuers/step-ca/transport.js';
import { makePki } from '../../support/pki.js';
import { listen } from '../../support/tls.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function ca(handler: (res: import('node:http').ServerResponse) => void) {
  const pki = await makePki({ names: ['127.0.0.1', 'localhost'] });
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (_req, res) => handler(res));
  const port = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { root: pki.rootPem, url: new URL(`https://127.0.0.1:${port}/1.0/sign`) };
}

it('a CA trickling its answer a byte at a time is cut off at the request timeout (ISSUER_UNAVAILABLE), not waited on', async () => {
  const { root, url } = await ca((res) => {
    res.writeHead(201, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 20);
    res.on('close', () => clearInterval(timer));
  });
  await expect(caRequest({ method: 'POST', url, body: {}, ca: root, timeoutMs: 300 })).rejects.toMatchObject({
    code: 'ISSUER_UNAVAILABLE',
    details: { url: url.origin, reason: 'timeout' },
  });
}, 10_000);

it('a CA presenting a chain of another root, or cutting its answer short, is ISSUER_UNAVAILABLE; a huge answer ISSUER_FAILED', async () => {
  const other = await makePki();
  const good = await ca((res) => res.end('{"crt":"x"}'));
  await expect(
    caRequest({ method: 'GET', url: good.url, ca: other.rootPem, timeoutMs: 5_000 }),
  ).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'tls' } });
  const cut = await ca((res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': '500' });
    res.write('{"crt":', () => res.socket?.destroy());
  });
  await expect(
    caRequest({ method: 'GET', url: cut.url, ca: cut.root, timeoutMs: 5_000 }),
  ).rejects.toMatchObject({
    code: 'ISSUER_UNAVAILABLE',
    details: { reason: 'truncated' },
  });
  const huge = await ca((res) => res.end(`{"crt":"${'x'.repeat(2 << 20)}"}`));
  await expect(
    caRequest({ method: 'GET', url: huge.url, ca: huge.root, timeoutMs: 5_000 }),
  ).rejects.toMatchObject({
    code: 'ISSUER_FAILED',
    details: { reason: 'too-large' },
  });
});
