// The bounded HTTPS client against real HTTPS servers on loopback: a server that trickles its
// answer, one that never finishes its handshake, a huge body, a body cut short, the wrong CA, the
// wrong host, an abort mid-request, a redirect (never followed), client certificates, a pin check
// before the request is written, and connection reuse only when asked for.
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { inspect } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { HttpsClient, type HttpsClientOptions } from '../../src/net/https-client.js';
import { makeLeaf, makePki } from '../support/pki.js';
import { listen } from '../support/tls.js';

type Pki = Awaited<ReturnType<typeof makePki>>;
type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let pki: Pki;
let stranger: Pki;
beforeAll(async () => {
  pki = await makePki({ names: ['localhost', '127.0.0.1'] });
  stranger = await makePki({ names: ['localhost', '127.0.0.1'] });
});

interface Served {
  url: string;
  requests: string[];
  connections: number;
  sockets: Set<net.Socket>;
  server: https.Server;
}

async function serve(handler: Handler, options: https.ServerOptions = {}): Promise<Served> {
  const served: Served = {
    url: '',
    requests: [],
    connections: 0,
    sockets: new Set(),
    server: undefined as never,
  };
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem, ...options }, (req, res) => {
    served.requests.push(req.url ?? '');
    handler(req, res);
  });
  server.on('secureConnection', (socket) => {
    served.connections++;
    served.sockets.add(socket);
    socket.on('close', () => served.sockets.delete(socket));
  });
  const port = await listen(server);
  cleanups.push(() => {
    for (const socket of served.sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  served.server = server;
  served.url = `https://localhost:${port}`;
  return served;
}

function client(options: Partial<HttpsClientOptions> = {}): HttpsClient {
  const c = new HttpsClient({
    label: 'test server',
    codes: { unavailable: 'ISSUER_UNAVAILABLE', invalid: 'ISSUER_FAILED' },
    ca: pki.rootPem,
    timeoutMs: 5_000,
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

const get = (c: HttpsClient, url: string, extra: { signal?: AbortSignal } = {}) =>
  c.request({ method: 'GET', url, ...extra });

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (error: unknown) => error as CertkeeperError,
  );

describe('HttpsClient', () => {
  it('answers with status, headers and body; an error status is an answer, not a failure', async () => {
    const s = await serve((req, res) => {
      res.setHeader('x-one', ['a', 'b']);
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end(`you asked ${req.method} ${req.url}`);
    });
    const c = client();
    const ok = await get(c, `${s.url}/hello?x=1`);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-one']).toBe('a, b');
    expect(ok.body.toString()).toBe('you asked GET /hello?x=1');
    const posted = await c.request({ method: 'POST', url: `${s.url}/p`, body: '{"a":1}' });
    expect(posted.body.toString()).toBe('you asked POST /p');
    expect((await get(c, `${s.url}/missing`)).status).toBe(404);
  });

  it('a server whose chain does not reach the pinned root is refused (reason tls), as is a certificate for another host', async () => {
    const s = await serve((_req, res) => res.end('secret bundle'));
    const wrongCa = await failure(get(client({ ca: stranger.rootPem }), `${s.url}/`));
    expect(wrongCa).toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'tls' } });
    const other = await makeLeaf(pki.intermediate, { names: ['elsewhere.test'] });
    const misnamed = await serve((_req, res) => res.end('x'), {
      key: other.key.toPem(),
      cert: other.certificate.pem + pki.intermediate.certificate.pem,
    });
    const wrongHost = await failure(get(client(), `${misnamed.url}/`));
    expect(wrongHost).toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'tls' } });
    // Node's bundle (no ca) does not know a private root either.
    const system = await failure(get(client({ ca: undefined }), `${s.url}/`));
    expect(system.details.reason).toBe('tls');
    expect(s.requests).toEqual([]);
  });

  it('a server trickling its answer a byte at a time is cut off at the deadline (reason timeout)', async () => {
    let trickling!: () => void;
    const started = new Promise<void>((resolve) => {
      trickling = resolve;
    });
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('.'), 20);
      res.on('close', () => clearInterval(timer));
      trickling();
    });
    const c = client({ timeoutMs: 400 });
    const error = await failure(get(c, `${s.url}/`));
    await started;
    expect(error).toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'timeout' } });
    expect(error.message).toMatch(/no complete answer within 400 ms/);
  });

  it('a server that accepts the connection and never answers the handshake is cut off at the deadline', async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((socket) => held.add(socket));
    const port = await listen(silent as never);
    cleanups.push(() => {
      for (const socket of held) socket.destroy();
      return new Promise((resolve) => silent.close(resolve));
    });
    const error = await failure(get(client({ timeoutMs: 300 }), `https://localhost:${port}/`));
    expect(error).toMatchObject({ details: { reason: 'timeout' } });
    expect(held.size).toBe(1);
  });

  it('an answer larger than maxBytes is refused (codes.invalid), whether announced or streamed', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/announced') {
        res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
        res.write('x');
        return;
      }
      // No content-length: 2 MiB streamed in chunks.
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 'y');
      const pump = () => {
        while (sent < 2 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 2 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      pump();
    });
    const c = client();
    const streamed = await failure(get(c, `${s.url}/streamed`));
    expect(streamed).toMatchObject({ code: 'ISSUER_FAILED', details: { reason: 'too-large' } });
    const announced = await failure(get(c, `${s.url}/announced`));
    expect(announced).toMatchObject({ code: 'ISSUER_FAILED', details: { reason: 'too-large' } });
    const small = client({ maxBytes: 16 });
    const serveSmall = await serve((_req, res) => res.end('seventeen bytes!!'));
    expect((await failure(get(small, `${serveSmall.url}/`))).details.reason).toBe('too-large');
  });

  it('an answer cut short by the server is truncated, never a shorter body', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only ten b', () => res.socket?.destroy());
    });
    const error = await failure(get(client(), `${s.url}/`));
    expect(error).toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'truncated' } });
  });

  it("the caller's signal aborts a request in flight (reason aborted); an aborted signal sends nothing", async () => {
    const controller = new AbortController();
    const s = await serve(() => controller.abort(new Error('attempt given up'))); // never answers
    const error = await failure(get(client(), `${s.url}/`, { signal: controller.signal }));
    expect(error).toMatchObject({ code: 'ISSUER_UNAVAILABLE', details: { reason: 'aborted' } });
    expect(s.requests).toEqual(['/']);
    const before = s.connections;
    const again = await failure(get(client(), `${s.url}/`, { signal: controller.signal }));
    expect(again.details.reason).toBe('aborted');
    expect(s.connections).toBe(before);
  });

  it('a redirect is an answer: never followed', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: '/target' });
        res.end();
      } else res.end('target');
    });
    const answer = await get(client(), `${s.url}/moved`);
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toBe('/target');
    expect(s.requests).toEqual(['/moved']);
  });

  it('presents a client certificate; a key that does not fit its certificate fails without a byte of the key in the error', async () => {
    const clientPki = await makePki({ names: ['client.test'], extKeyUsage: ['clientAuth'] });
    const seen: string[] = [];
    const s = await serve(
      (req, res) => {
        seen.push(String((req.socket as tls.TLSSocket).getPeerCertificate().subject?.CN));
        res.end('hello');
      },
      { requestCert: true, rejectUnauthorized: true, ca: clientPki.rootPem },
    );
    const c = client();
    const chainPem = clientPki.chainPem;
    const answer = await c.request({
      method: 'GET',
      url: `${s.url}/`,
      clientCertificate: { key: clientPki.leaf.key, chainPem },
    });
    expect(answer.body.toString()).toBe('hello');
    expect(seen).toEqual(['client.test']);

    const wrongKey = stranger.leaf.key;
    const error = await failure(
      c.request({ method: 'GET', url: `${s.url}/`, clientCertificate: { key: wrongKey, chainPem } }),
    );
    expect(error.code).toBe('ISSUER_UNAVAILABLE');
    const printed = [error.message, JSON.stringify(error), inspect(error, { depth: 5 })].join('\n');
    const body = wrongKey.toPem().split('\n').slice(1, -2).join('');
    for (let i = 0; i + 24 <= body.length; i += 24) expect(printed).not.toContain(body.slice(i, i + 24));
    // The same through kept-alive connections (the key reaches OpenSSL inside the agent).
    const pooled = await failure(
      client({ keepAlive: true }).request({
        method: 'GET',
        url: `${s.url}/`,
        clientCertificate: { key: wrongKey, chainPem },
      }),
    );
    expect(pooled.code).toBe('ISSUER_UNAVAILABLE');
    expect(pooled.message + inspect(pooled, { depth: 5 })).not.toContain(body.slice(0, 24));
    // Without a certificate the server refuses the handshake.
    expect((await failure(get(c, `${s.url}/`))).code).toBe('ISSUER_UNAVAILABLE');
  });

  it('checkPeer runs before a byte of the request is written: a refusal is the error, and the server sees no request', async () => {
    const s = await serve((_req, res) => res.end('bundle'));
    const refusal = new CertkeeperError('TRUST_PIN_MISMATCH', 'not the pinned certificate');
    const peers: string[] = [];
    const refusing = client({
      unverified: true,
      checkPeer: (socket, host) => {
        peers.push(`${host} ${socket.getPeerCertificate().subject.CN}`);
        return refusal;
      },
    });
    expect(await failure(get(refusing, `${s.url}/`))).toBe(refusal);
    expect(peers).toEqual(['localhost localhost']);
    expect(s.requests).toEqual([]);
    const accepting = client({ unverified: true, ca: stranger.rootPem, checkPeer: () => null });
    expect((await get(accepting, `${s.url}/`)).body.toString()).toBe('bundle');
    expect(() => client({ keepAlive: true, checkPeer: () => null })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'checkPeer' } }),
    );
  });

  it('a fresh connection and TLS session per request by default; one kept alive with keepAlive, closed by close()', async () => {
    const resumed: boolean[] = [];
    const s = await serve((req, res) => {
      resumed.push((req.socket as tls.TLSSocket).isSessionReused());
      res.end('x');
    });
    const fresh = client();
    await get(fresh, `${s.url}/`);
    await get(fresh, `${s.url}/`);
    expect(s.connections).toBe(2);
    expect(resumed).toEqual([false, false]);

    const pooled = client({ keepAlive: true });
    await get(pooled, `${s.url}/`);
    await get(pooled, `${s.url}/`);
    expect(s.connections).toBe(3);
    expect(s.sockets.size).toBe(1);
    pooled.close();
    pooled.close();
    for (let i = 0; i < 200 && s.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.sockets.size).toBe(0);
  });

  it('refuses an http: URL unless allowed (the server may have handed it over); the query never reaches a message', async () => {
    await expect(get(client(), 'http://localhost:1/x')).rejects.toMatchObject({
      code: 'ISSUER_FAILED',
      details: { reason: 'insecure' },
    });
    const secret = randomBytes(12).toString('hex');
    const closed = net.createServer();
    const port = await listen(closed as never);
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(
      get(client({ allowHttp: true }), `http://localhost:${port}/p?token=${secret}`),
    );
    expect(error).toMatchObject({ details: { reason: 'unreachable' } });
    expect(error.message).toContain(`GET http://localhost:${port}/p`);
    expect(JSON.stringify(error) + inspect(error)).not.toContain(secret);
  });

  it('validates its options', () => {
    for (const [options, option] of [
      [{ timeoutMs: 0 }, 'timeoutMs'],
      [{ timeoutMs: Number.POSITIVE_INFINITY }, 'timeoutMs'],
      [{ maxBytes: -1 }, 'maxBytes'],
    ] as const) {
      expect(() => client(options)).toThrow(expect.objectContaining({ details: { option } }));
    }
  });
});
