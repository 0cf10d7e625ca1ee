// Certificates the fake step-ca signs: new leaves (step-ca's default template) and renewals,
// which copy the old certificate.
import type { webcrypto, X509Certificate } from 'node:crypto';
import { createCertificate, randomSerial } from '../../../src/crypto/certificate-builder.js';
import type { ParsedCertificate } from '../../../src/crypto/inspect.js';
import type { PrivateKey } from '../../../src/crypto/keys.js';
import { crypto, x509 } from '../../../src/crypto/x509.js';

export interface Authority {
  key: PrivateKey;
  certificate: ParsedCertificate;
}

/** The leaf of a sign request: CN = sub, SANs = the token's, EKU serverAuth + clientAuth. */
export async function issueLeaf(
  csr: x509.Pkcs10CertificateRequest,
  claims: Record<string, unknown>,
  intermediate: Authority,
  notBefore: number,
  notAfter: number,
): Promise<ParsedCertificate> {
  const sans =
    Array.isArray(claims.sans) && claims.sans.length > 0 ? (claims.sans as string[]) : [String(claims.sub)];
  return createCertificate({
    publicKey: (await csr.publicKey.export(crypto)) as webcrypto.CryptoKey,
    issuer: intermediate,
    commonName: String(claims.sub),
    names: sans,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    extKeyUsage: ['serverAuth', 'clientAuth'],
  });
}

/**
 * Renew copies the certificate: same subject, SANs, extensions and duration, same key (rekey:
 * the new key, with its own subject key identifier), backdated like a new one.
 */
export async function copyCertificate(
  old: X509Certificate,
  intermediate: Authority,
  now: number,
  backdate: number,
  newKey?: webcrypto.CryptoKey,
): Promise<Buffer> {
  const source = new x509.X509Certificate(old.raw);
  const duration = source.notAfter.getTime() - source.notBefore.getTime();
  const publicKey = newKey ?? ((await source.publicKey.export(crypto)) as webcrypto.CryptoKey);
  const extensions: x509.Extension[] = [];
  for (const ext of source.extensions) {
    extensions.push(
      newKey && ext instanceof x509.SubjectKeyIdentifierExtension
        ? await x509.SubjectKeyIdentifierExtension.create(newKey, false, crypto)
        : ext,
    );
  }
  const signer = await intermediate.key.cryptoKeyPair();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: source.subjectName,
      issuer: new x509.X509Certificate(intermediate.certificate.der).subjectName,
      notBefore: new Date(now - backdate),
      notAfter: new Date(now - backdate + duration),
      publicKey,
      signingKey: signer.privateKey,
      signingAlgorithm: intermediate.key.signingAlgorithm as webcrypto.Algorithm,
      extensions,
    },
    crypto,
  );
  return Buffer.from(cert.rawData);
}
