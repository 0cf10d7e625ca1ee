// The setup helpers: servers created already wired to the manager. http2 serves h2 and (with
// allowHTTP1) https/1.1 across a swap with ALPN unchanged; the caller's own TLS options survive
// every swap, including a SNICallback of their own (the fallback for names certkeeper does not
// manage); a server created before the manager has certificates serves them once ready.
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/manager/manager.js';
import {
  createHttp2SecureServer,
  createHttpsServer,
  createTlsServer,
} from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer, selfSigned } from '../support/issuers.js';
import { connectOpen, handshake } from '../support/tls.js';
import { cleanup, type Fixture, onCleanup, serve, servedSerial, silent, startManager } from './harness.js';

afterEach(cleanup);

type Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
const protocolOf: Handler = (req, res) => res.end(`HTTP/${req.httpVersion}`);

function h2Connect(port: number, f: Fixture): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'localhost', ca: f.root });
    onCleanup(() => void session.destroy());
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

function h2Get(session: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/' });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.once('end', () => resolve(body));
    stream.once('error', reject);
  });
}

function peerSerial(socket: tls.TLSSocket): string {
  return socket.getPeerCertificate().serialNumber.toLowerCase();
}

/** One HTTP/1.1 request over a fresh verified connection offering http/1.1 by ALPN. */
function http1Get(port: number, f: Fixture): Promise<{ body: string; alpn: string | false; serial: string }> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: f.root,
      agent: false,
      ALPNProtocols: ['http/1.1'],
    };
    const request = https.get(options, (response) => {
      const socket = response.socket as tls.TLSSocket;
      const alpn = socket.alpnProtocol ?? false;
      const serial = peerSerial(socket);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.once('end', () => resolve({ body, alpn, serial }));
    });
    request.once('error', reject);
  });
}

describe('createHttp2SecureServer', () => {
  it('serves h2 and, with allowHTTP1, https/1.1 across a swap; ALPN unchanged', async () => {
    const f = await startManager();
    const server = createHttp2SecureServer(f.manager, { allowHTTP1: true }, protocolOf);
    const port = await serve(server as unknown as tls.Server);
    const old = servedSerial(f.manager, 'web');

    const open = await h2Connect(port, f);
    expect(open.alpnProtocol).toBe('h2');
    expect(peerSerial(open.socket as tls.TLSSocket)).toBe(old);
    expect(await h2Get(open)).toBe('HTTP/2.0');
    expect(await http1Get(port, f)).toEqual({ body: 'HTTP/1.1', alpn: 'http/1.1', serial: old });

    const swapped = nextEvent(f.manager, 'swapped');
    await f.manager.renewNow('web');
    expect((await swapped).verified).toBe(1);
    const renewed = servedSerial(f.manager, 'web');
    expect(renewed).not.toBe(old);

    // New connections: the new certificate, same protocols.
    const fresh = await h2Connect(port, f);
    expect(fresh.alpnProtocol).toBe('h2');
    expect(peerSerial(fresh.socket as tls.TLSSocket)).toBe(renewed);
    expect(await h2Get(fresh)).toBe('HTTP/2.0');
    expect(await http1Get(port, f)).toEqual({ body: 'HTTP/1.1', alpn: 'http/1.1', serial: renewed });
    // The h2 session opened before the swap keeps its certificate and takes new streams.
    expect(peerSerial(open.socket as tls.TLSSocket)).toBe(old);
    expect(await h2Get(open)).toBe('HTTP/2.0');
    // Server preference is unchanged: h2 first when a client offers both.
    const both = await connectOpen(port, { servername: 'localhost', ALPNProtocols: ['http/1.1', 'h2'] });
    onCleanup(() => void both.destroy());
    expect(both.alpnProtocol).toBe('h2');
    expect(peerSerial(both)).toBe(renewed);
  });

  it('without allowHTTP1: h2 only, and swaps are still live-verified', async () => {
    const f = await startManager();
    const server = createHttp2SecureServer(f.manager, {}, protocolOf);
    const port = await serve(server as unknown as tls.Server);
    const swapped = nextEvent(f.manager, 'swapped');
    await f.manager.renewNow('web');
    expect((await swapped).verified).toBe(1);
    const session = await h2Connect(port, f);
    expect(peerSerial(session.socket as tls.TLSSocket)).toBe(servedSerial(f.manager, 'web'));
    expect(await h2Get(session)).toBe('HTTP/2.0');
    await expect(http1Get(port, f)).rejects.toThrow();
  });
});

describe('createHttpsServer / createTlsServer', () => {
  it("keeps the caller's TLS options across swaps (minVersion TLSv1.3 still refuses TLS 1.2)", async () => {
    const f = await startManager();
    const server = createHttpsServer(f.manager, { minVersion: 'TLSv1.3' }, (_req, res) => res.end('ok'));
    const port = await serve(server);
    const tls12 = { servername: 'localhost', maxVersion: 'TLSv1.2' } as const;
    await expect(handshake(port, tls12)).rejects.toThrow();
    for (let i = 0; i < 2; i++) await f.manager.renewNow('web');
    await expect(handshake(port, tls12)).rejects.toThrow();
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(servedSerial(f.manager, 'web'));
  });

  it('a server created before the manager has certificates serves them once obtained', async () => {
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const store = new MemoryStore();
    const manager = createCertificateManager({
      store,
      issuer,
      certificates: [{ id: 'web', names: ['localhost'] }],
      logger: silent,
    });
    onCleanup(() => manager.stop());
    const server = createTlsServer(manager, {}, (socket) => socket.end());
    const port = await serve(server);
    // Nothing to serve yet.
    await expect(handshake(port, { servername: 'localhost' })).rejects.toThrow();
    await manager.start();
    await manager.ready();
    const root = await issuer.ca.rootCertificate(store);
    const served = await handshake(port, { servername: 'localhost', ca: root, rejectUnauthorized: true });
    expect(served.serial).toBe(servedSerial(manager, 'web'));
    expect((await handshake(port)).serial).toBe(servedSerial(manager, 'web'));
  });
});

describe('a SNICallback passed to the helpers', () => {
  it('stays the fallback for names certkeeper does not manage', async () => {
    const f = await startManager([
      { id: 'web', names: ['localhost'] },
      { id: 'wild', names: ['*.api.test'] },
    ]);
    const { key, certificate } = await selfSigned(['user.test']);
    const userContext = tls.createSecureContext({ key: key.toPem(), cert: certificate.pem });
    const asked: string[] = [];
    const server = createTlsServer(
      f.manager,
      {
        SNICallback: (servername, cb) => {
          asked.push(servername);
          cb(null, userContext);
        },
      },
      (socket) => socket.end(),
    );
    const port = await serve(server);
    const serial = (servername?: string) => handshake(port, { servername }).then((s) => s.serial);
    expect(await serial('user.test')).toBe(certificate.info.serialNumber.toLowerCase());
    expect(await serial('x.api.test')).toBe(servedSerial(f.manager, 'wild'));
    expect(await serial('localhost')).toBe(servedSerial(f.manager, 'web'));
    expect(await serial()).toBe(servedSerial(f.manager, 'web'));
    expect(asked).toEqual(['user.test']);
  });
});
