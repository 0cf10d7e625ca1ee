// Revocation by the embedded CA as verifiers see it: CRLs read by `openssl crl` / `openssl verify`
// and enforced by Node TLS servers that request client certificates, also across intermediate
// renewals and root rotations (leaves of a replaced intermediate stay in service until re-issued).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { makeLeaf } from '../support/pki.js';
import { listen } from '../support/tls.js';
import {
  caState,
  cleanupAfterEach,
  clockAhead,
  connect,
  context,
  HOUR,
  issue,
  openssl,
  opensslVerify,
  servers,
  stealIntermediate,
  tempDir,
} from './internal-ca-support.js';

cleanupAfterEach();

type Issued = Awaited<ReturnType<typeof issue>>;

/** A TLS server that requests a client certificate; `strict: false` finishes and says why not. */
async function serveMtls(server: Issued, roots: string[], crl: string[] | undefined, strict = true) {
  const tlsServer = tls.createServer(
    {
      key: server.key.toPem(),
      cert: server.chainPem,
      ca: roots,
      ...(crl ? { crl } : {}),
      requestCert: true,
      rejectUnauthorized: strict,
    },
    (socket) =>
      socket.end(
        socket.authorized
          ? `hello ${socket.getPeerCertificate().subject.CN}`
          : `refused: ${socket.authorizationError}`,
      ),
  );
  servers.push(tlsServer);
  return listen(tlsServer);
}

const clientOf = (leaf: Issued, roots: string[]) => ({
  ca: roots,
  key: leaf.key.toPem(),
  cert: leaf.chainPem,
});

describe('revocation', () => {
  it('revoke records the serial once; crl() lists it with its reason, signed by the intermediate', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const kept = await issue(ca, store, ['kept'], 'client');
    const gone = await issue(ca, store, ['gone'], 'client');
    const ctx = context(store);
    await ca.revoke({ chainPem: gone.chainPem }, 'keyCompromise', ctx);
    await ca.revoke({ chainPem: gone.chainPem }, 'superseded', ctx); // already revoked: unchanged
    expect(await ca.revokedSerials()).toEqual([gone.leaf.info.serialNumber]);

    const crl = await ca.crl();
    expect(crl).toMatch(/^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/);
    const shown = openssl(['crl', '-noout', '-text'], crl);
    expect(shown.ok, shown.output).toBe(true);
    expect(shown.output).toContain(`Serial Number: ${gone.leaf.info.serialNumber.toUpperCase()}`);
    expect(shown.output).not.toContain(kept.leaf.info.serialNumber.toUpperCase());
    expect(shown.output).toMatch(/CRL Reason Code:\s*\n\s*Key Compromise/);
    expect(shown.output).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Intermediate CA/);

    const root = await ca.rootCertificate();
    const dir = tempDir('certkeeper-openssl-');
    writeFileSync(join(dir, 'chain.pem'), gone.chain[0]!.pem + root);
    writeFileSync(join(dir, 'root.pem'), root);
    const verified = openssl(['crl', '-noout', '-CAfile', join(dir, 'chain.pem'), '-verify'], crl);
    expect(verified.output).toMatch(/verify OK/);
    // Signed by the intermediate, not the root: the root alone cannot verify it.
    expect(openssl(['crl', '-noout', '-CAfile', join(dir, 'root.pem'), '-verify'], crl).output).not.toMatch(
      /verify OK/,
    );

    // OpenSSL's own revocation check of the leaves.
    const crlFile = join(dir, 'crl.pem');
    writeFileSync(crlFile, crl);
    const check = ['-CRLfile', crlFile, '-crl_check'];
    const pems = (l: typeof kept) => ({ root, intermediate: l.chain[0]!.pem, leaf: l.leaf.pem });
    expect(opensslVerify(pems(kept), 'sslclient', check).ok).toBe(true);
    expect(opensslVerify(pems(gone), 'sslclient', check)).toMatchObject({
      ok: false,
      output: /certificate revoked/,
    });
  });

  it('a Node TLS server with crls() refuses the revoked client certificate and accepts the others', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const server = await issue(ca, store, ['localhost'], 'server');
    const kept = await issue(ca, store, ['kept'], 'client');
    const gone = await issue(ca, store, ['gone'], 'client');
    await ca.revoke({ chainPem: gone.chainPem }, 'keyCompromise', context(store));
    const root = await ca.rootCertificate();
    const crl = await ca.crls();
    expect(crl).toHaveLength(2);
    const [leaves, intermediates] = crl.map((pem) => openssl(['crl', '-noout', '-text'], pem).output);
    expect(leaves).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Intermediate CA/);
    expect(leaves).toContain(`Serial Number: ${gone.leaf.info.serialNumber.toUpperCase()}`);
    expect(intermediates).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Root CA/);
    expect(intermediates).toContain('No Revoked Certificates');

    // `strict` is a real mTLS server; the lenient one lets the handshake finish and says why not.
    const serve = (crls: string[] | undefined, strict = true) => serveMtls(server, [root], crls, strict);
    const client = (leaf: Issued) => clientOf(leaf, [root]);

    const checked = await serve(crl);
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      expect(await connect(checked, { ...client(kept), maxVersion })).toEqual({ data: 'hello kept' });
      const refused = await connect(checked, { ...client(gone), maxVersion });
      expect(refused.data).toBeUndefined();
      expect(refused.error).toEqual(expect.any(String));
    }
    // Why: the revocation, nothing else.
    const lenient = await serve(crl, false);
    expect(await connect(lenient, client(gone))).toEqual({ data: 'refused: CERT_REVOKED' });
    expect(await connect(lenient, client(kept))).toEqual({ data: 'hello kept' });
    // The leaf CRL alone is not enough for Node (it checks a CRL for every CA certificate).
    const leafOnly = await serve([crl[0]!], false);
    expect(await connect(leafOnly, client(kept))).toEqual({ data: 'refused: UNABLE_TO_GET_CRL' });
    // Control: without CRLs the revoked certificate is accepted.
    expect(await connect(await serve(undefined), client(gone))).toEqual({ data: 'hello gone' });
  });

  it('crls() keeps covering the leaves of a replaced intermediate (rotateIntermediate, automatic renewal)', async () => {
    const store = new MemoryStore();
    // Intermediates of 30 hours are renewed once less than 10 leaf lifetimes (10 h) remain.
    const ca = new InternalCA({ store, lifetimeMs: HOUR, intermediateLifetimeMs: 30 * HOUR });
    const server = await issue(ca, store, ['localhost'], 'server');
    const old = await issue(ca, store, ['old'], 'client');
    const oldGone = await issue(ca, store, ['old-gone'], 'client');
    await ca.revoke({ chainPem: oldGone.chainPem }, 'keyCompromise', context(store));
    await ca.rotateIntermediate();
    const fresh = await issue(ca, store, ['fresh'], 'client');
    expect(fresh.chain[0]!.info.serialNumber).not.toBe(old.chain[0]!.info.serialNumber);
    const roots = [await ca.rootCertificate()];

    const crls = await ca.crls();
    expect(crls).toHaveLength(3);
    const port = await serveMtls(server, roots, crls, false);
    expect(await connect(port, clientOf(old, roots))).toEqual({ data: 'hello old' });
    expect(await connect(port, clientOf(fresh, roots))).toEqual({ data: 'hello fresh' });
    expect(await connect(port, clientOf(oldGone, roots))).toEqual({ data: 'refused: CERT_REVOKED' });
    // What the list was before: the old intermediate's leaves had no CRL and were refused.
    const before = await serveMtls(server, roots, crls.slice(0, 2), false);
    expect(await connect(before, clientOf(old, roots))).toEqual({ data: 'refused: UNABLE_TO_GET_CRL' });

    // The automatic renewal 21 h later retires the second intermediate the same way.
    const later = clockAhead(21 * HOUR);
    const third = await issue(ca, store, ['third'], 'client', later);
    expect(third.chain[0]!.info.serialNumber).not.toBe(fresh.chain[0]!.info.serialNumber);
    expect(await ca.crls(undefined, later.now())).toHaveLength(4);
    // Once the first two intermediates have expired, their CRLs (and keys) go; the third's stays.
    const afterExpiry = fresh.chain[0]!.info.notAfter.getTime() + 1;
    await ca.rotateIntermediate(undefined, afterExpiry);
    const retired = (await caState(store, ca)).retired.map(
      (r) => parseCertificates(r.cert)[0]!.info.serialNumber,
    );
    expect(retired).toEqual([third.chain[0]!.info.serialNumber]);
    expect(await ca.crls(undefined, afterExpiry)).toHaveLength(3);
  });

  it('during a root rotation crls() covers both roots; after it, only the new one', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ store });
    const old = await issue(ca, store, ['old'], 'client');
    await ca.beginRootRotation();
    await ca.activateNextRoot();
    const server = await issue(ca, store, ['localhost'], 'server');
    const fresh = await issue(ca, store, ['fresh'], 'client');
    const roots = await ca.publishedRoots();
    expect(roots).toHaveLength(2);

    const during = await ca.crls();
    expect(during).toHaveLength(4);
    const port = await serveMtls(server, roots, during);
    expect(await connect(port, clientOf(old, roots))).toEqual({ data: 'hello old' });
    expect(await connect(port, clientOf(fresh, roots))).toEqual({ data: 'hello fresh' });

    await ca.finishRootRotation();
    expect(await ca.crls()).toHaveLength(2);
    expect(await caState(store, ca)).toMatchObject({ retired: [], previous: null });
  });

  it("rotateIntermediate({ reason: 'keyCompromise' }): the root CRL lists the old intermediate, and an mTLS server with crls() refuses leaves minted with its stolen key", async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ store });
    const server = await issue(ca, store, ['localhost'], 'server');
    const before = await issue(ca, store, ['before'], 'client');
    const stolen = await stealIntermediate(store, ca);
    expect(stolen.certificate.pem).toBe(before.chain[0]!.pem);

    await ca.rotateIntermediate({ reason: 'keyCompromise' });
    const fresh = await issue(ca, store, ['fresh'], 'client');
    expect(fresh.chain[0]!.info.serialNumber).not.toBe(stolen.certificate.info.serialNumber);
    // The thief mints a client certificate of their choosing after the rotation.
    const minted = await makeLeaf(stolen, { names: ['mallory'], extKeyUsage: ['clientAuth'] });
    const mallory = {
      key: minted.key,
      chainPem: minted.certificate.pem + stolen.certificate.pem,
    } as Issued;
    const roots = await ca.publishedRoots();
    expect(roots).toHaveLength(1);

    const crls = await ca.crls();
    const texts = crls.map((pem) => openssl(['crl', '-noout', '-text'], pem).output);
    const rootCrl = texts.find((t) => /Issuer: CN\s*=\s*certkeeper-internal Root CA/.test(t));
    expect(rootCrl).toContain(`Serial Number: ${stolen.certificate.info.serialNumber.toUpperCase()}`);
    expect(rootCrl).toMatch(/CRL Reason Code:\s*\n\s*Key Compromise/);
    // No CRL is signed with the stolen key any more (each names its signer by AKI).
    const stolenKeyId = stolen.certificate.info.subjectKeyId!.toUpperCase().match(/../g)!.join(':');
    expect(texts.filter((t) => t.includes(stolenKeyId))).toEqual([]);

    const strict = await serveMtls(server, roots, crls);
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      expect(await connect(strict, { ...clientOf(fresh, roots), maxVersion })).toEqual({
        data: 'hello fresh',
      });
      const refused = await connect(strict, { ...clientOf(mallory, roots), maxVersion });
      expect(refused.data).toBeUndefined();
      expect(refused.error).toEqual(expect.any(String));
      // Leaves the stolen intermediate issued before the rotation go with it (re-issue: renewAll).
      expect((await connect(strict, { ...clientOf(before, roots), maxVersion })).data).toBeUndefined();
    }
    const lenient = await serveMtls(server, roots, crls, false);
    expect(await connect(lenient, clientOf(mallory, roots))).toEqual({ data: 'refused: CERT_REVOKED' });
    // Control: without the CRLs the minted certificate passes, so the refusal is the revocation's.
    expect(await connect(await serveMtls(server, roots, undefined), clientOf(mallory, roots))).toEqual({
      data: 'hello mallory',
    });
  });

  it('revoke() of a replaced intermediate puts it on the root CRL: its leaves are refused from then on', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ store });
    const old = await issue(ca, store, ['old'], 'client');
    await ca.rotateIntermediate(); // retired, no reason: its leaves stay valid
    const server = await issue(ca, store, ['localhost'], 'server');
    const roots = await ca.publishedRoots();
    const accepted = await serveMtls(server, roots, await ca.crls());
    expect(await connect(accepted, clientOf(old, roots))).toEqual({ data: 'hello old' });

    await ca.revoke({ chainPem: old.chain[0]!.pem }, 'keyCompromise', context(store));
    const crls = await ca.crls();
    const rootCrl = crls
      .map((pem) => openssl(['crl', '-noout', '-text'], pem).output)
      .find((t) => /Issuer: CN\s*=\s*certkeeper-internal Root CA/.test(t));
    expect(rootCrl).toContain(`Serial Number: ${old.chain[0]!.info.serialNumber.toUpperCase()}`);
    expect(await connect(await serveMtls(server, roots, crls, false), clientOf(old, roots))).toEqual({
      data: 'refused: CERT_REVOKED',
    });
  });
});
