// What someone who can write the store but holds no encryption key can do to the embedded CA:
// plant plaintext files in a shared store directory, plant values in Redis, replay older sealed
// values at the same key. None of it may become trust or undo a revocation.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { InternalCaTrustSource } from '../../src/trust/internal-ca-source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { makeIntermediate, makeLeaf, makeRoot } from '../support/pki.js';
import { redisPeer } from '../support/services.js';
import { listen } from '../support/tls.js';
import { cleanupAfterEach, connect, context, issue, servers, tempDir } from './internal-ca-support.js';

cleanupAfterEach();

const KEY = randomBytes(32).toString('base64');

/** An attacker's CA named like ours, and a client certificate from it. */
async function attackerPki() {
  const root = await makeRoot('certkeeper-internal Root CA');
  const intermediate = await makeIntermediate(root, 'certkeeper-internal Intermediate CA');
  const leaf = await makeLeaf(intermediate, { names: ['mallory'], extKeyUsage: ['clientAuth'] });
  return { root, intermediate, leaf, chainPem: leaf.certificate.pem + intermediate.certificate.pem };
}

/** A server that requires a client certificate from `roots`; it greets the client by CN. */
async function mtlsServer(server: { key: { toPem(): string }; chainPem: string }, roots: string[]) {
  const tlsServer = tls.createServer(
    {
      key: server.key.toPem(),
      cert: server.chainPem,
      ca: roots,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => socket.end(`hello ${socket.getPeerCertificate().subject.CN}`),
  );
  servers.push(tlsServer);
  return listen(tlsServer);
}

describe('files planted in a shared store directory (EncryptedStore over FileStore)', () => {
  it('never become roots, intermediates, rotation state or revocations', async () => {
    const directory = tempDir();
    const store = new EncryptedStore(new FileStore({ directory }), { keys: [KEY], logger: silentLogger });
    const ca = new InternalCA({ store });
    const server = await issue(ca, store, ['localhost'], 'server');
    const roots = await ca.publishedRoots();
    const trust = new TrustStore({ sources: [new InternalCaTrustSource(ca)] });
    await trust.start();
    const trusted = trust.current().fingerprints;

    // The writer has the directory, not the key: plaintext files, named the way the CA's were.
    const evil = await attackerPki();
    const dir = join(directory, 'ca', ca.name);
    mkdirSync(dir, { recursive: true });
    const plant = (file: string, text: string) => writeFileSync(join(dir, file), text);
    plant('root-previous.pem', evil.root.certificate.pem);
    plant('root-next.pem', evil.root.certificate.pem);
    plant('root.pem', evil.root.certificate.pem);
    plant('intermediate.pem', evil.intermediate.certificate.pem);
    plant(
      `retired-${evil.intermediate.certificate.info.serialNumber}.pem`,
      evil.intermediate.certificate.pem,
    );
    plant('revoked.json', '[]');

    expect(await ca.publishedRoots()).toEqual(roots);
    expect((await ca.rootRotation()).phase).toBe('none');
    expect((await trust.refresh()).fingerprints).toEqual(trusted);
    const client = await issue(ca, store, ['alice'], 'client');
    expect(client.chain[0]!.info.authorityKeyId).not.toBe(evil.root.certificate.info.subjectKeyId);

    // A real handshake against the trust the CA publishes: the attacker's client is refused.
    const port = await mtlsServer(server, trust.current().certificates as string[]);
    const as = (c: { key: { toPem(): string }; chainPem: string }) => ({
      ca: roots,
      key: c.key.toPem(),
      cert: c.chainPem,
    });
    expect(await connect(port, as(client))).toEqual({ data: 'hello alice' });
    expect((await connect(port, as({ key: evil.leaf.key, chainPem: evil.chainPem }))).data).toBeUndefined();
    trust.stop();
  });

  it('a plaintext CA state planted over the sealed one is refused, never published', async () => {
    const directory = tempDir();
    const store = new EncryptedStore(new FileStore({ directory }), { keys: [KEY], logger: silentLogger });
    const ca = new InternalCA({ store });
    await issue(ca, store, ['localhost']);
    const roots = await ca.publishedRoots();
    const trust = new TrustStore({ sources: [new InternalCaTrustSource(ca)] });
    await trust.start();

    // The attacker's own CA, complete with keys, in the CA's plaintext format, under the CA's name.
    const evil = await attackerPki();
    const record = {
      version: 1_000_000,
      root: { cert: evil.root.certificate.pem, key: evil.root.key.toPem() },
      intermediate: { cert: evil.intermediate.certificate.pem, key: evil.intermediate.key.toPem() },
      retired: [],
      revoked: [],
    };
    writeFileSync(join(directory, 'ca', ca.name, 'state.key'), JSON.stringify(record));
    writeFileSync(join(directory, 'ca', ca.name, 'root-key.pem'), evil.root.key.toPem());

    await expect(ca.publishedRoots()).rejects.toMatchObject({ code: expect.stringMatching(/CORRUPT/) });
    await expect(issue(ca, store, ['x.test'])).rejects.toMatchObject({
      code: expect.stringMatching(/CORRUPT/),
    });
    await trust.refresh().catch(() => {});
    expect(trust.current().certificates).toEqual(roots);
    trust.stop();
  });
});

const url = await redisPeer();

async function caValues(admin: Redis, prefix: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const key of await admin.keys(`${prefix}:v:ca/*`)) found.set(key, (await admin.dumpBuffer(key))!);
  return found;
}

async function dropPrefix(admin: Redis, prefix: string): Promise<void> {
  const keys = await admin.keys(`${prefix}:*`);
  if (keys.length > 0) await admin.unlink(...keys);
}

(url ? describe : describe.skip)('values planted and replayed in Redis (RedisStore with encryption)', () => {
  const admin = new Redis(url ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  afterAll(() => admin.quit());

  it('a root planted in plaintext is not published; an older sealed state replayed does not un-revoke', async () => {
    const prefix = `certkeeper-test-${randomUUID()}`;
    const store = new RedisStore({ url: url!, prefix, encryption: { keys: [KEY] }, logger: silentLogger });
    const writer = new RedisStore({
      url: url!,
      prefix,
      encryption: false, // the writer has no key: what it writes is plaintext
      logger: silentLogger,
    });
    try {
      const ca = new InternalCA({ store });
      const first = await issue(ca, store, ['first'], 'client');
      const second = await issue(ca, store, ['second'], 'client');
      await ca.revoke({ chainPem: first.chainPem }, 'keyCompromise', context(store));
      const roots = await ca.publishedRoots();

      const evil = await attackerPki();
      await writer.put(`ca/${ca.name}/root-previous.pem`, evil.root.certificate.pem);
      await writer.put(`ca/${ca.name}/root-next.pem`, evil.root.certificate.pem);
      expect(await ca.publishedRoots()).toEqual(roots);

      // Captured now (first revoked), replayed after second is revoked too.
      const captured = await caValues(admin, prefix);
      expect(captured.size).toBeGreaterThan(0);
      await ca.revoke({ chainPem: second.chainPem }, 'keyCompromise', context(store));
      expect(await ca.revokedSerials()).toEqual([
        first.leaf.info.serialNumber,
        second.leaf.info.serialNumber,
      ]);
      for (const [key, dump] of captured) await admin.restore(key, 0, dump, 'REPLACE');

      // Refused loudly, never a CRL without the second revocation.
      const crls = await ca.crls().catch((e: { code: string }) => e);
      expect(crls).toMatchObject({ code: 'CA_STATE_ROLLBACK' });
      await expect(ca.revokedSerials()).rejects.toMatchObject({ code: 'CA_STATE_ROLLBACK' });
      await expect(issue(ca, store, ['third'], 'client')).rejects.toMatchObject({
        code: 'CA_STATE_ROLLBACK',
      });
    } finally {
      await dropPrefix(admin, prefix);
      await writer.close();
      await store.close();
    }
  });
});
