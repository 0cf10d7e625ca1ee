import https from 'node:https';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { x509 } from '../../src/crypto/x509.js';
import type { CertificateRequest, Issuer } from '../../src/issuers/issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { crlServer, makeCa, signCrl } from '../revocation/support.js';
import { nextEvent } from '../support/events.js';
import type { Authority } from '../support/pki.js';
import { close, listen } from '../support/tls.js';

let ca: { root: Authority; intermediate: Authority };
let crls: Awaited<ReturnType<typeof crlServer>>;
beforeAll(async () => {
  ca = await makeCa();
  crls = await crlServer();
});
afterAll(() => crls.close());

/** A CA whose leaves name a CRL distribution point: the shape of a public CA's certificates today. */
class CrlNamingIssuer implements Issuer {
  readonly id = 'crl-naming-ca';
  issued = 0;
  async issue(request: CertificateRequest) {
    this.issued++;
    const now = Date.now();
    const leaf = await createCertificate({
      publicKey: request.key,
      issuer: ca.intermediate,
      commonName: request.names[0],
      names: request.names,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 24 * 3_600_000),
      extKeyUsage: ['serverAuth'],
      extensions: [new x509.CRLDistributionPointsExtension([crls.url('/ca.crl')])],
    });
    return { chainPem: leaf.pem + ca.intermediate.certificate.pem };
  }
}

it('renews at once when its own CRL lists it, and retires the connections that used it', async () => {
  crls.set('/ca.crl', await signCrl(ca.intermediate));
  const issuer = new CrlNamingIssuer();
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    reconcileIntervalMs: 0,
    revocationCheck: { minIntervalMs: 200, maxIntervalMs: 500, retireBoundMs: 5_000 },
    logger: {
      debug() {},
      info() {},
      warn: (m: string, f?: object) => console.log('WARN', m, f),
      error: (m: string, f?: object) => console.log('ERR', m, f),
    },
    certificates: [{ id: 'web', names: ['crl.revoked.test'] }],
  });
  const server = createHttpsServer(manager, {}, (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 600);
    else res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  const port = await listen(server);
  const agent = new https.Agent({ keepAlive: true });
  const get = (path: string) =>
    new Promise<{ body: string }>((resolve, reject) => {
      https
        .get(
          { host: '127.0.0.1', port, path, agent, servername: 'crl.revoked.test', rejectUnauthorized: false },
          (res) => {
            let body = '';
            res.on('data', (d) => {
              body += d;
            });
            res.on('end', () => resolve({ body }));
          },
        )
        .on('error', reject);
    });
  try {
    await manager.start();
    await manager.ready();
    const before = manager.status()[0]!.serial!;
    await Promise.all([get('/'), get('/')]); // two kept-alive connections with the old certificate
    const idleSocketClosed = new Promise<void>((resolve) => {
      const sockets = Object.values(agent.freeSockets).flat();
      expect(sockets.length).toBeGreaterThan(0);
      sockets[0]!.once('close', () => resolve());
    });
    const slow = get('/slow');
    const revoked = nextEvent(manager, 'revoked', 10_000);
    const renewed = nextEvent(manager, 'renewed', 10_000);
    crls.set(
      '/ca.crl',
      await signCrl(ca.intermediate, {
        revoked: [{ serial: before, reason: x509.X509CrlReason.keyCompromise }],
      }),
    );
    expect(await revoked).toMatchObject({ id: 'web', serial: before, reason: 'keyCompromise' });
    expect((await renewed).previousSerial).toBe(before);
    expect(manager.status()[0]!.serial).not.toBe(before);
    expect((await slow).body).toBe('slow done');
    // Node's own keep-alive timeout (60 s here) would close it too, much later: retired within the bound.
    await Promise.race([
      idleSocketClosed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the idle connection was not retired')), 8_000),
      ),
    ]);
    expect(issuer.issued).toBe(2);
  } finally {
    agent.destroy();
    await manager.stop();
    await close(server);
  }
}, 30_000);
