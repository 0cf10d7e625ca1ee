/**
 * Creating certificates: what the embedded CA signs with, and what tests use to build hostile
 * chains. Leaves get SKI/AKI (ARI needs the AKI), key usage fitting the key type, and the EKUs
 * asked for; CAs get critical basicConstraints and keyCertSign.
 */
import { randomBytes, type webcrypto as WebCrypto } from 'node:crypto';
import { rdnValue, sanExtension } from './csr.js';
import { type ParsedCertificate, parseCertificateDer } from './inspect.js';
import type { PrivateKey } from './keys.js';
import { parseNames } from './names.js';
import { crypto, x509 } from './x509.js';

/** What `createCertificate` puts in a certificate. */
export interface CertificateSpec {
  /** Public key the certificate certifies (from a CSR or a PrivateKey). */
  publicKey: WebCrypto.CryptoKey | PrivateKey;
  /** Signing key and certificate; omit for a self-signed certificate (then `publicKey` must be a PrivateKey). */
  issuer?: { key: PrivateKey; certificate: ParsedCertificate };
  commonName?: string;
  /** Subject DN in RFC 4514 form; overrides `commonName`. */
  subject?: string;
  /**
   * Takes the subject of this certificate, byte for byte; overrides `subject`. A certificate
   * re-signed for the same key (the internal CA's root, when its validity starts in the future)
   * keeps its name, so what it signed still chains to it.
   */
  sameSubjectAs?: ParsedCertificate;
  names?: readonly string[];
  notBefore: Date;
  notAfter: Date;
  isCA?: boolean;
  pathLength?: number;
  extKeyUsage?: readonly ('serverAuth' | 'clientAuth')[];
  /** Hex; default 16 random bytes with the top bit cleared (a positive INTEGER, 128 bits). */
  serialNumber?: string;
  /** Extra extensions (e.g. the ACME identifier of TLS-ALPN-01). */
  extensions?: x509.Extension[];
}

export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive and never a leading zero byte
  return bytes.toString('hex');
}

async function publicCryptoKey(key: WebCrypto.CryptoKey | PrivateKey): Promise<WebCrypto.CryptoKey> {
  return 'cryptoKeyPair' in key ? (await key.cryptoKeyPair()).publicKey : key;
}

/** Subject names by certificate: parsing the issuer again for every certificate it signs costs ~1 ms. */
const subjectNames = new WeakMap<ParsedCertificate, x509.Name>();

function subjectName(certificate: ParsedCertificate): x509.Name {
  let name = subjectNames.get(certificate);
  if (!name) {
    name = new x509.X509Certificate(certificate.der).subjectName;
    subjectNames.set(certificate, name);
  }
  return name;
}

export async function createCertificate(spec: CertificateSpec): Promise<ParsedCertificate> {
  const subjectPublic = await publicCryptoKey(spec.publicKey);
  const signer = spec.issuer?.key ?? (spec.publicKey as PrivateKey);
  if (!('cryptoKeyPair' in signer)) throw new TypeError('a self-signed certificate needs a PrivateKey');
  const signerKeys = await signer.cryptoKeyPair();
  const subject = spec.sameSubjectAs
    ? subjectName(spec.sameSubjectAs)
    : (spec.subject ?? (spec.commonName ? `CN=${rdnValue(spec.commonName)}` : ''));
  const isCA = spec.isCA ?? false;

  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCA, isCA ? spec.pathLength : undefined, true),
    await x509.SubjectKeyIdentifierExtension.create(subjectPublic, false, crypto),
    // The issuer's SKI when it has one (what AKI must match); computed from its key otherwise.
    spec.issuer?.certificate.info.subjectKeyId
      ? new x509.AuthorityKeyIdentifierExtension(spec.issuer.certificate.info.subjectKeyId, false)
      : await x509.AuthorityKeyIdentifierExtension.create(signerKeys.publicKey, false, crypto),
  ];
  if (isCA) {
    extensions.push(
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
    );
  } else {
    const rsa = subjectPublic.algorithm.name.startsWith('RSA');
    const usage = x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
    extensions.push(new x509.KeyUsagesExtension(usage, true));
  }
  if (spec.extKeyUsage && spec.extKeyUsage.length > 0) {
    const oids = spec.extKeyUsage.map((u) => x509.ExtendedKeyUsage[u]);
    extensions.push(new x509.ExtendedKeyUsageExtension(oids, false));
  }
  if (spec.names && spec.names.length > 0) extensions.push(sanExtension(parseNames(spec.names)));
  extensions.push(...(spec.extensions ?? []));

  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: spec.serialNumber ?? randomSerial(),
      subject,
      // The issuer's own encoded name, not a re-parsed string, so name chaining matches byte for byte.
      issuer: spec.issuer ? subjectName(spec.issuer.certificate) : subject,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: subjectPublic,
      signingKey: signerKeys.privateKey,
      signingAlgorithm: signer.signingAlgorithm as WebCrypto.Algorithm,
      extensions,
    },
    crypto,
  );
  return parseCertificateDer(Buffer.from(cert.rawData), 'certificate', cert);
}
