// Retiring connections with real clients: a keep-alive HTTP/1.1 agent, an HTTP/2 session and a
// plain TLS socket. Requests in flight finish; idle connections close; the bound is enforced.
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { trackConnections } from '../../src/server/retire.js';
import { makePki } from '../support/pki.js';
import { close, listen } from '../support/tls.js';

const pki = await makePki({ names: ['a.retire.test'] });
const other = await makePki({ names: ['b.retire.test'] });
const contexts = {
  'a.retire.test': tls.createSecureContext({ key: pki.keyPem, cert: pki.chainPem }),
  'b.retire.test': tls.createSecureContext({ key: other.keyPem, cert: other.chainPem }),
};
const serverOptions = {
  key: pki.keyPem,
  cert: pki.chainPem,
  SNICallback: (name: string, cb: (e: Error | null, c?: tls.SecureContext) => void) =>
    cb(null, contexts[name as keyof typeof contexts] ?? contexts['a.retire.test']),
};
const fp = (p: typeof pki) => p.leaf.certificate.info.fingerprint256;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function get(agent: https.Agent, port: number, path: string, servername = 'a.retire.test') {
  return new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path, agent, servername, rejectUnauthorized: false },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
      },
    );
    req.on('error', reject);
  });
}

describe('trackConnections().retire', () => {
  it('HTTP/1.1: ends idle keep-alive connections, lets the request in flight finish with Connection: close', async () => {
    const server = https.createServer(serverOptions, (req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow done'), 400);
      else res.end('fast');
    });
    const port = await listen(server);
    const tracker = trackConnections(server);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
    cleanups.push(
      () => close(server),
      () => agent.destroy(),
    );

    const warm = await Promise.all([get(agent, port, '/fast'), get(agent, port, '/fast')]);
    expect(warm.map((r) => r.connection)).toEqual(['keep-alive', 'keep-alive']);
    const slow = get(agent, port, '/slow');
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.size).toBe(2);
    const result = await tracker.retire(() => true, { boundMs: 5_000 });
    expect(result).toEqual({ matched: 2, forced: 0 });
    expect(await slow).toEqual({ status: 200, body: 'slow done', connection: 'close' });
    expect(tracker.size).toBe(0);
    // The agent goes on with a fresh connection.
    expect((await get(agent, port, '/fast')).body).toBe('fast');
  });

  it('HTTP/2: GOAWAY, the open stream completes, a new connection serves the next request', async () => {
    const server = http2.createSecureServer(serverOptions, (req, res) => {
      if (req.url !== '/slow') return res.end('fast');
      res.writeHead(200);
      res.write('slow ');
      setTimeout(() => res.end('done'), 400);
    });
    const port = await listen(server);
    const tracker = trackConnections(server);
    cleanups.push(() => close(server));
    const client = http2.connect(`https://127.0.0.1:${port}`, {
      servername: 'a.retire.test',
      rejectUnauthorized: false,
    });
    cleanups.push(() => client.destroy());
    const closed = once(client, 'close');
    const goaway = once(client, 'goaway');
    const stream = client.request({ ':path': '/slow' });
    let body = '';
    stream.on('data', (d) => {
      body += d;
    });
    const ended = once(stream, 'end');
    await once(stream, 'response');
    const result = await tracker.retire(() => true, { boundMs: 5_000 });
    await ended;
    await closed;
    expect((await goaway)[0]).toBe(0); // NO_ERROR
    expect(body).toBe('slow done');
    expect(result).toEqual({ matched: 1, forced: 0 });
    const again = http2.connect(`https://127.0.0.1:${port}`, {
      servername: 'a.retire.test',
      rejectUnauthorized: false,
    });
    cleanups.push(() => void again.destroy());
    const next = again.request({ ':path': '/fast' });
    let text = '';
    next.on('data', (d) => {
      text += d;
    });
    await once(next, 'end');
    expect(text).toBe('fast');
  });

  it('plain TLS: the socket is ended; only connections the predicate selects are touched', async () => {
    const server = tls.createServer(serverOptions, (socket) => socket.on('data', (d) => socket.write(d)));
    const port = await listen(server);
    const tracker = trackConnections(server);
    cleanups.push(() => close(server));
    const connect = (servername: string) =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () =>
          resolve(s),
        );
        s.on('error', reject);
        cleanups.push(() => void s.destroy());
      });
    const a = await connect('a.retire.test');
    const b = await connect('b.retire.test');
    a.resume();
    await new Promise((r) => setTimeout(r, 50));
    const aEnded = once(a, 'end');
    const result = await tracker.retire((c) => c.servedFingerprint() === fp(pki), { boundMs: 5_000 });
    await aEnded;
    expect(result).toEqual({ matched: 1, forced: 0 });
    expect(b.destroyed).toBe(false);
    b.write('still here');
    const [echo] = await once(b, 'data');
    expect(String(echo)).toBe('still here');
  });

  it('a response that never ends is destroyed at the bound', async () => {
    const server = https.createServer(serverOptions, (_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    const port = await listen(server);
    const tracker = trackConnections(server);
    cleanups.push(() => close(server));
    const agent = new https.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const aborted = new Promise<string>((resolve) => {
      https.get(
        { host: '127.0.0.1', port, agent, rejectUnauthorized: false, servername: 'a.retire.test' },
        (res) => {
          res.on('data', () => {});
          res.on('aborted', () => resolve('aborted'));
          res.on('error', () => resolve('aborted'));
        },
      );
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(await tracker.retire(() => true, { boundMs: 300 })).toEqual({ matched: 1, forced: 1 });
    expect(await aborted).toBe('aborted');
  });

  it('sees the verified client chain of an mTLS connection', async () => {
    const client = await makePki({ names: ['client.retire.test'], extKeyUsage: ['clientAuth'] });
    // No SNICallback here: an SNI context would bring its own (empty) client trust.
    const server = tls.createServer(
      { key: pki.keyPem, cert: pki.chainPem, requestCert: true, ca: client.rootPem },
      () => {},
    );
    const port = await listen(server);
    const tracker = trackConnections(server);
    cleanups.push(() => close(server));
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(
        {
          host: '127.0.0.1',
          port,
          servername: 'a.retire.test',
          rejectUnauthorized: false,
          key: client.keyPem,
          cert: client.chainPem,
        },
        () => resolve(s),
      );
      s.on('error', reject);
    });
    cleanups.push(() => void socket.destroy());
    socket.resume();
    await new Promise((r) => setTimeout(r, 50));
    const rootFp = client.root.certificate.info.fingerprint256;
    const underRoot = (c: { peerChain(): tls.DetailedPeerCertificate[] }) =>
      c.peerChain().some((p) => p.fingerprint256.replaceAll(':', '').toLowerCase() === rootFp);
    const ended = once(socket, 'end');
    expect(await tracker.retire(underRoot, { boundMs: 2_000 })).toEqual({ matched: 1, forced: 0 });
    await ended;
  });
});
