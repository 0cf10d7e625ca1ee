// Mutual TLS across swaps: every swap passes the server's full option set, so `ca` (the client
// CA) survives and client certificates keep being verified. A server swapped by hand with
// `setSecureContext({ key, cert })` is the control: it loses `ca` and refuses valid clients.
import https from 'node:https';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer, createTlsServer } from '../../src/server/create-server.js';
import { connectOpen, handshake } from '../support/tls.js';
import { cleanup, type Fixture, serve, servedSerial, startManager } from './harness.js';

afterEach(cleanup);

const CERTIFICATES = [
  { id: 'web', names: ['localhost', '127.0.0.1'] },
  { id: 'svc', names: ['svc-client'], purpose: 'client' as const },
];

/** Server options for mTLS: clients must present a certificate from the InternalCA. */
function mtlsOptions(f: Fixture) {
  return { requestCert: true, rejectUnauthorized: true, ca: f.root };
}

/** A TLS listener that tells the client which client certificate it saw. */
function whoAmI(socket: tls.TLSSocket): void {
  const peer = socket.getPeerCertificate();
  socket.end(`${socket.authorized}:${peer.serialNumber?.toLowerCase()}:${peer.subject?.CN}`);
}

/** The same for an HTTPS request handler. */
function whoAmIHttp(socket: tls.TLSSocket, res: { end(body: string): void }) {
  const peer = socket.getPeerCertificate();
  res.end(`${socket.authorized}:${peer.serialNumber?.toLowerCase()}:${peer.subject?.CN}`);
}

function clientCredentials(manager: CertificateManager) {
  const c = manager.credentials('svc')!;
  return { key: c.key.toPem(), cert: c.chainPem };
}

/** Raw TLS client: what the server said it saw, or the error that refused us. */
function tlsCall(port: number, f: Fixture, credentials: { key?: string; cert?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: f.root,
      rejectUnauthorized: true,
      ...credentials,
    });
    let body = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.on('data', (chunk) => {
      body += chunk;
    });
    // Under TLS 1.3 a refused client may see a plain close instead of an alert.
    socket.once('end', () => (body ? resolve(body) : reject(new Error('closed without an answer'))));
    socket.once('error', reject);
  });
}

/** HTTPS client (no agent, so nothing is pooled or resumed between calls). */
function httpsCall(port: number, f: Fixture, credentials: { key?: string; cert?: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, servername: 'localhost', ca: f.root, agent: false, ...credentials },
      (response) => {
        let body = '';
        response.on('data', (chunk) => {
          body += chunk;
        });
        response.once('end', () => resolve(body));
      },
    );
    request.setTimeout(5000, () => request.destroy(new Error('timeout')));
    request.once('error', reject);
  });
}

type Call = typeof tlsCall;

/** A valid client is served (and seen by the server), a client without certificate is refused. */
async function expectMtlsWorks(call: Call, port: number, f: Fixture) {
  const serial = servedSerial(f.manager, 'svc');
  await expect(call(port, f, clientCredentials(f.manager))).resolves.toBe(`true:${serial}:svc-client`);
  await expect(call(port, f, {})).rejects.toThrow();
}

/** Renews the server certificate `times` times; each swap must be live-verified. */
async function swapServer(manager: CertificateManager, times: number) {
  for (let i = 0; i < times; i++) {
    const swapped = new Promise<{ verified: number }>((resolve) => manager.once('swapped', resolve));
    const before = servedSerial(manager, 'web');
    await manager.renewNow('web');
    expect(servedSerial(manager, 'web')).not.toBe(before);
    expect((await swapped).verified).toBe(1);
  }
}

describe('mTLS keeps verifying client certificates across swaps', () => {
  it('createHttpsServer: the request handler sees the client certificate after 3 swaps', async () => {
    const f = await startManager(CERTIFICATES);
    const server = createHttpsServer(f.manager, mtlsOptions(f), (req, res) => {
      whoAmIHttp(req.socket as tls.TLSSocket, res);
    });
    const port = await serve(server);
    await expectMtlsWorks(httpsCall, port, f);
    await swapServer(f.manager, 3);
    await expectMtlsWorks(httpsCall, port, f);
    // A renewed client certificate is accepted too, and the server gets its new serial.
    await f.manager.renewNow('svc');
    await expectMtlsWorks(httpsCall, port, f);
  });

  it('createTlsServer: the server sees the client certificate after 3 swaps', async () => {
    const f = await startManager(CERTIFICATES);
    const server = createTlsServer(f.manager, mtlsOptions(f), whoAmI);
    const port = await serve(server);
    await expectMtlsWorks(tlsCall, port, f);
    await swapServer(f.manager, 3);
    await expectMtlsWorks(tlsCall, port, f);
  });

  it('attach(existing server): ca is taken from the server fields and kept across 3 swaps', async () => {
    const f = await startManager(CERTIFICATES);
    const initial = f.manager.credentials('web')!;
    const server = tls.createServer(
      { key: initial.key.toPem(), cert: initial.chainPem, ...mtlsOptions(f) },
      whoAmI,
    );
    const port = await serve(server);
    f.manager.attach(server); // no tls option: the snapshot of the server's fields must carry ca
    await expectMtlsWorks(tlsCall, port, f);
    await swapServer(f.manager, 3);
    await expectMtlsWorks(tlsCall, port, f);
  });

  it('control: a plain setSecureContext({ key, cert }) drops ca and refuses a valid client', async () => {
    const f = await startManager(CERTIFICATES);
    const credentials = () => {
      const c = f.manager.credentials('web')!;
      return { key: c.key.toPem(), cert: c.chainPem };
    };
    const server = tls.createServer({ ...credentials(), ...mtlsOptions(f) }, whoAmI);
    const port = await serve(server);
    await expectMtlsWorks(tlsCall, port, f);
    await f.manager.renewNow('web');
    server.setSecureContext(credentials());
    // The server certificate did change (TLS 1.3: the client side completes before the refusal)...
    const anonymous = await connectOpen(port, { servername: 'localhost' });
    expect(anonymous.getPeerCertificate().serialNumber.toLowerCase()).toBe(servedSerial(f.manager, 'web'));
    anonymous.destroy();
    // ...but the client CA is gone: the valid client is refused.
    await expect(tlsCall(port, f, clientCredentials(f.manager))).rejects.toThrow();
    await expect(tlsCall(port, f, {})).rejects.toThrow();
  });
});

describe('mTLS servers limited to TLS 1.2', () => {
  // Under TLS 1.2 the server refuses the live check (no client certificate) before the handshake
  // completes; the check must still read the certificate the server presented.
  it('are renewed and live-verified, and keep verifying client certificates', async () => {
    const f = await startManager(CERTIFICATES);
    const server = createTlsServer(f.manager, { ...mtlsOptions(f), maxVersion: 'TLSv1.2' }, whoAmI);
    const port = await serve(server);
    const rolledBack: unknown[] = [];
    f.manager.on('rolledBack', (e) => rolledBack.push(e.reason.message));
    await swapServer(f.manager, 2);
    expect(rolledBack).toEqual([]);
    await expectMtlsWorks(tlsCall, port, f);
    const served = await handshake(port, { servername: 'localhost', ...clientCredentials(f.manager) });
    expect(served.serial).toBe(servedSerial(f.manager, 'web'));
  });
});
