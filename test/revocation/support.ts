// A small PKI whose leaves name CRL distribution points on a loopback HTTP server the test controls.
import type { webcrypto } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { crypto, x509 } from '../../src/crypto/x509.js';
import { type Authority, makeIntermediate, makeRoot } from '../support/pki.js';

const HOUR = 3_600_000;

export async function leafWithCrl(issuer: Authority, urls: string[]) {
  const key = await PrivateKey.generate('ec-p256');
  const now = Date.now();
  const certificate = await createCertificate({
    publicKey: key,
    issuer,
    commonName: 'svc.test',
    names: ['svc.test'],
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    extKeyUsage: ['serverAuth'],
    extensions: urls.length ? [new x509.CRLDistributionPointsExtension(urls)] : [],
  });
  return { key, certificate };
}

export interface CrlSpec {
  revoked?: { serial: string; reason?: x509.X509CrlReason; at?: Date }[];
  thisUpdate?: Date;
  nextUpdate?: Date;
  extensions?: x509.Extension[];
  /** Sign with this authority's key while naming `issuer` (a forgery). */
  signer?: Authority;
}

export async function signCrl(issuer: Authority, spec: CrlSpec = {}): Promise<Uint8Array> {
  const now = Date.now();
  const signer = spec.signer ?? issuer;
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: new x509.X509Certificate(issuer.certificate.der).subjectName,
      thisUpdate: spec.thisUpdate ?? new Date(now - 60_000),
      nextUpdate: spec.nextUpdate ?? new Date(now + HOUR),
      entries: (spec.revoked ?? []).map((r) => ({
        serialNumber: r.serial,
        revocationDate: r.at ?? new Date(now - 30_000),
        reason: r.reason,
      })),
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(issuer.certificate.info.subjectKeyId!, false),
        ...(spec.extensions ?? []),
      ],
      signingKey: (await signer.key.cryptoKeyPair()).privateKey,
      signingAlgorithm: signer.key.signingAlgorithm as webcrypto.Algorithm,
    },
    crypto,
  );
  return new Uint8Array(crl.rawData);
}

/** An HTTP server answering each path with what `routes` holds now; counts requests per path. */
export async function crlServer() {
  const routes = new Map<string, { status?: number; body: Uint8Array | string }>();
  const hits = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes.get(path);
    res.writeHead(route?.status ?? (route ? 200 : 404), { 'content-type': 'application/pkix-crl' });
    res.end(route ? route.body : 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (path: string) => `${base}${path}`,
    set: (path: string, body: Uint8Array | string, status?: number) => routes.set(path, { body, status }),
    hits: (path: string) => hits.get(path) ?? 0,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function makeCa() {
  const root = await makeRoot('CRL Test Root');
  const intermediate = await makeIntermediate(root, 'CRL Test Intermediate');
  return { root, intermediate };
}
