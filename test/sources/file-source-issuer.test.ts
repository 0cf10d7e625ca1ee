// Certificates another tool writes, served by a real manager on a real TLS server, mixed with
// the embedded CA (limited to client certificates) for a client certificate: the files' pair is what handshakes get; a new pair
// is swapped in once both files are written (never the half-written state); a rewrite of the
// same files renews nothing; the manager's own renewal finds nothing new and says so.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { FileSourceIssuer } from '../../src/sources/file-source-issuer.js';
import { limitPurposes } from '../../src/sources/purposes.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { makePki } from '../support/pki.js';
import { close, handshake, listen } from '../support/tls.js';

describe('FileSourceIssuer in a manager', () => {
  let dir: string;
  let manager: CertificateManager;
  let server: tls.Server;
  let port: number;
  let unfollow: () => void;
  let pairs: { chainPem: string; keyPem: string; serial: string }[];
  const renewed: string[] = [];
  const ca = new InternalCA();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-source-'));
    pairs = [];
    for (let i = 0; i < 2; i++) {
      const pki = await makePki({ names: ['localhost'] });
      pairs.push({
        chainPem: pki.chainPem,
        keyPem: pki.keyPem,
        serial: pki.leaf.certificate.info.serialNumber,
      });
    }
    mkdirSync(join(dir, 'web'));
    writeFileSync(join(dir, 'web/fullchain.pem'), pairs[0]!.chainPem);
    writeFileSync(join(dir, 'web/privkey.pem'), pairs[0]!.keyPem);
    const source = new FileSourceIssuer({
      id: 'external',
      chain: join(dir, '{id}/fullchain.pem'),
      key: join(dir, '{id}/privkey.pem'),
      purposes: ['server'],
    });
    manager = createCertificateManager({
      store: new MemoryStore(),
      issuer: [source, limitPurposes(ca, ['client'])],
      logger: silentLogger,
      reconcileIntervalMs: 0,
      certificates: [
        { id: 'web', names: ['localhost'] },
        { id: 'client', names: ['client.test'], purpose: 'client' },
      ],
    });
    manager.on('renewed', (e) => renewed.push(e.serial));
    server = tls.createServer({});
    manager.attach(server);
    await manager.start();
    await manager.ready();
    port = await listen(server);
    unfollow = await source.follow(manager, ['web'], { pollIntervalMs: 100, settleMs: 20 });
  }, 60_000);
  afterAll(async () => {
    unfollow?.();
    await manager?.stop();
    if (server) await close(server);
    rmSync(dir, { recursive: true, force: true });
  });

  const served = async () => (await handshake(port, { servername: 'localhost' })).serial;
  const settle = () => new Promise((r) => setTimeout(r, 500));

  it("serves the files' pair; the client certificate comes from the CA", async () => {
    expect(await served()).toBe(pairs[0]!.serial);
    const status = Object.fromEntries(manager.status().map((s) => [s.id, s.issuer]));
    expect(status).toEqual({ web: 'external', client: ca.id });
  });

  it('a rewrite of the same files renews nothing', async () => {
    writeFileSync(join(dir, 'web/fullchain.pem'), pairs[0]!.chainPem);
    writeFileSync(join(dir, 'web/privkey.pem'), pairs[0]!.keyPem);
    await settle();
    expect(renewed).toEqual([]);
    expect(await served()).toBe(pairs[0]!.serial);
  });

  it('a half-written pair is never served; the whole pair is swapped in', async () => {
    writeFileSync(join(dir, 'web/fullchain.pem'), pairs[1]!.chainPem);
    await settle();
    expect(renewed).toEqual([]);
    expect(await served()).toBe(pairs[0]!.serial);
    writeFileSync(join(dir, 'web/privkey.pem'), pairs[1]!.keyPem);
    for (let i = 0; i < 100 && renewed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(renewed).toEqual([pairs[1]!.serial]);
    expect(await served()).toBe(pairs[1]!.serial);
  });

  it("the manager's own renewal finds nothing new: a retryable refusal, the certificate stays", async () => {
    const error = await manager.renewNow('web').catch((e) => e);
    expect(error).toMatchObject({
      code: 'ISSUER_UNAVAILABLE',
      details: expect.objectContaining({ unchanged: true, retryable: true }),
    });
    expect(renewed).toEqual([pairs[1]!.serial]);
    expect(await served()).toBe(pairs[1]!.serial);
  });

  it('limitPurposes: the CA still issues client certificates, never server ones', async () => {
    await manager.renewNow('client');
    expect(manager.status().find((s) => s.id === 'client')!.issuer).toBe(ca.id);
    const limited = limitPurposes(ca, ['client']);
    expect([limited.supportsPurpose!('client'), limited.supportsPurpose!('server')]).toEqual([true, false]);
    // Its other abilities are the CA's: the manager's trust anchors are the CA's roots.
    expect((await manager.trustAnchors()).length).toBeGreaterThan(0);
    expect(() => limitPurposes(ca, [])).toThrow(/limitPurposes option purposes/);
  });
});
