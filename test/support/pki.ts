// Builds small PKIs for tests: root → intermediate → leaf, with knobs for every way a bundle can
// be wrong. Everything is generated fresh; nothing is read from disk.
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import type { ParsedCertificate } from '../../src/crypto/inspect.js';
import { type KeyType, PrivateKey } from '../../src/crypto/keys.js';

export interface Authority {
  key: PrivateKey;
  certificate: ParsedCertificate;
}

const HOUR = 3_600_000;

export async function makeRoot(name = 'Test Root', keyType: KeyType = 'ec-p256'): Promise<Authority> {
  const key = await PrivateKey.generate(keyType);
  const now = Date.now();
  const certificate = await createCertificate({
    publicKey: key,
    commonName: name,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    isCA: true,
  });
  return { key, certificate };
}

export async function makeIntermediate(parent: Authority, name = 'Test Intermediate'): Promise<Authority> {
  const key = await PrivateKey.generate('ec-p256');
  const now = Date.now();
  const certificate = await createCertificate({
    publicKey: key,
    issuer: parent,
    commonName: name,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    isCA: true,
    pathLength: 0,
  });
  return { key, certificate };
}

export interface LeafOptions {
  names?: string[];
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  extKeyUsage?: ('serverAuth' | 'clientAuth')[];
  key?: PrivateKey;
}

export async function makeLeaf(issuer: Authority, options: LeafOptions = {}) {
  const key = options.key ?? (await PrivateKey.generate(options.keyType ?? 'ec-p256'));
  const now = Date.now();
  const certificate = await createCertificate({
    publicKey: key,
    issuer,
    commonName: options.names?.[0] ?? 'leaf.test',
    names: options.names ?? ['leaf.test'],
    notBefore: options.notBefore ?? new Date(now - HOUR),
    notAfter: options.notAfter ?? new Date(now + 2 * HOUR),
    extKeyUsage: options.extKeyUsage ?? ['serverAuth'],
  });
  return { key, certificate };
}

/** A full PKI with a leaf for `names`; chain PEM is leaf + intermediate. */
export async function makePki(options: LeafOptions = {}) {
  const root = await makeRoot();
  const intermediate = await makeIntermediate(root);
  const leaf = await makeLeaf(intermediate, options);
  return {
    root,
    intermediate,
    leaf,
    chainPem: leaf.certificate.pem + intermediate.certificate.pem,
    keyPem: leaf.key.toPem(),
    rootPem: root.certificate.pem,
  };
}
