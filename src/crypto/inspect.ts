/**
 * Certificate inspection: the facts the lifecycle needs (names, validity, serial, fingerprint,
 * key identifiers for ARI, EKUs, CA flag) as plain data. Node's X509Certificate does the signature
 * work; @peculiar/x509 reads the extensions Node does not expose (AKI, SKI, typed SANs).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { CertkeeperError, describeCause } from '../errors.js';
import { LruCache } from '../lru.js';
import { describeValue, isBytes } from './guards.js';
import { type KeyType, keyTypeOf } from './keys.js';
import { decodeNameConstraints, type NameConstraints } from './name-constraints.js';
import { canonicalIp } from './names.js';
import { parseCertificatePems, toPem } from './pem.js';
import { x509 } from './x509.js';

/** OID of the serverAuth extended key usage. */
export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
/** OID of the clientAuth extended key usage. */
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const EKU_NAMES: Record<string, string> = {
  [EKU_SERVER_AUTH]: 'serverAuth',
  [EKU_CLIENT_AUTH]: 'clientAuth',
};
/** keyUsage bits in the order RFC 5280 numbers them. */
const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;

/** What certkeeper reads from a certificate: subject, names, validity, serial, key identifiers, key usages. */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  commonName: string | null;
  /** Lowercase hex of the DER INTEGER content bytes (leading 00 kept: ARI's certID needs them). */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  lifetimeMs: number;
  dnsNames: string[];
  ipAddresses: string[];
  /**
   * DNS names then IP addresses, as they appear in the SAN extension (DNS names with ASCII letters
   * lower-cased and nothing else changed; IPs canonical, or hex when not 4 or 16 bytes).
   */
  names: string[];
  /** Lowercase hex SHA-256 of the DER. */
  fingerprint256: string;
  subjectKeyId: string | null;
  authorityKeyId: string | null;
  /** `serverAuth`, `clientAuth` or the dotted OID of other usages; null when the extension is absent. */
  extKeyUsage: string[] | null;
  isCA: boolean;
  pathLength: number | null;
  /** Whether the basicConstraints extension is present at all. */
  basicConstraints: boolean;
  /** keyUsage bits set (`digitalSignature`, `keyCertSign`, …); null when the extension is absent. */
  keyUsage: string[] | null;
  /** Dotted OIDs of the extensions marked critical. */
  criticalExtensions: string[];
  /** The nameConstraints of a CA (DNS and IP subtrees matter to TLS); null when absent. */
  nameConstraints: NameConstraints | null;
  keyType: KeyType | null;
}

/** One parsed certificate: its bytes, Node's view (for verification) and the extracted facts. */
export interface ParsedCertificate {
  der: Buffer;
  pem: string;
  node: X509Certificate;
  info: CertificateInfo;
}

/**
 * DER content bytes of a positive INTEGER from its hex value: minimal, with the 00 byte that
 * keeps a high first bit positive. @peculiar/x509 drops that byte; ARI's certID needs it.
 */
export function serialDerHex(value: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{0,256}$/.test(value)) {
    throw new CertkeeperError(
      'MALFORMED_PEM',
      `serial number: expected hex digits, got ${describeValue(value)}`,
    );
  }
  let digits = value.toLowerCase().replace(/^(00)+/, '');
  if (digits.length % 2 === 1) digits = `0${digits}`;
  if (digits === '') return '00';
  return Number.parseInt(digits[0]!, 16) >= 8 ? `00${digits}` : digits;
}

function hex(value: string | undefined | null): string | null {
  return value ? value.toLowerCase() : null;
}

/**
 * Recently parsed certificates by their DER. One issuance parses the same leaf and intermediate
 * several times (builder, issuer, validation, records) and the anchors at every validation; each
 * parse costs ~0.3 ms of X.509 and ASN.1 decoding. Results are frozen, so sharing them is safe.
 */
const recent = new LruCache<string, ParsedCertificate>(1024);

export function parseCertificateDer(
  der: Buffer,
  what = 'certificate',
  /** The same certificate already decoded by @peculiar/x509 (a certificate just built). */
  decoded?: x509.X509Certificate,
): ParsedCertificate {
  if (!isBytes(der)) {
    throw new CertkeeperError('MALFORMED_PEM', `${what}: expected DER bytes, got ${describeValue(der)}`);
  }
  const bytes: Uint8Array = der;
  if (!Buffer.isBuffer(bytes)) der = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return recent.getOrCreate(der.toString('latin1'), () => parseUncached(der, what, decoded));
}

function parseUncached(der: Buffer, what: string, decoded?: x509.X509Certificate): ParsedCertificate {
  let node: X509Certificate;
  let info: CertificateInfo;
  // Extensions decode lazily: one that does not decode is as malformed as the certificate, and
  // TLS clients refuse it too (OpenSSL marks it invalid).
  try {
    node = new X509Certificate(der);
    info = facts(der, node, decoded ?? new x509.X509Certificate(der));
  } catch (cause) {
    throw new CertkeeperError('MALFORMED_PEM', `${what}: not a valid X.509 certificate`, {
      details: { reason: describeCause(cause) },
    });
  }
  return Object.freeze({ der, pem: toPem('CERTIFICATE', der), node, info });
}

/** An IP SAN as text: canonical, or the hex @peculiar/x509 gives for a length that is no address. */
function ipText(value: string): string {
  try {
    return canonicalIp(value) ?? value;
  } catch {
    return value;
  }
}

function facts(der: Buffer, node: X509Certificate, cert: x509.X509Certificate): CertificateInfo {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const item of san?.names.items ?? []) {
    if (item.type === 'dns') dnsNames.push(item.value.replace(/[A-Z]/g, (c) => c.toLowerCase()));
    else if (item.type === 'ip') ipAddresses.push(ipText(item.value));
  }
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const constraints = cert.getExtension('2.5.29.30');
  const cn = cert.subjectName.getField('CN')[0] ?? null;
  const info: CertificateInfo = {
    subject: cert.subject,
    issuer: cert.issuer,
    commonName: cn,
    serialNumber: serialDerHex(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    lifetimeMs: cert.notAfter.getTime() - cert.notBefore.getTime(),
    dnsNames,
    ipAddresses,
    names: [...dnsNames, ...ipAddresses],
    fingerprint256: createHash('sha256').update(der).digest('hex'),
    subjectKeyId: hex(ski?.keyId),
    authorityKeyId: hex(aki?.keyId),
    extKeyUsage: eku ? eku.usages.map((u) => EKU_NAMES[String(u)] ?? String(u)) : null,
    isCA: basic?.ca ?? false,
    pathLength: basic?.pathLength ?? null,
    basicConstraints: basic !== null,
    keyUsage: usage ? KEY_USAGES.filter((_, bit) => (usage.usages & (1 << bit)) !== 0) : null,
    criticalExtensions: cert.extensions.filter((e) => e.critical).map((e) => e.type),
    nameConstraints: constraints ? decodeNameConstraints(new Uint8Array(constraints.value)) : null,
    keyType: keyTypeOf(node.publicKey),
  };
  for (const list of [
    dnsNames,
    ipAddresses,
    info.names,
    info.extKeyUsage,
    info.keyUsage,
    info.criticalExtensions,
  ])
    if (list) Object.freeze(list);
  return Object.freeze(info);
}

/** Parses every certificate of a PEM bundle, in order. */
export function parseCertificates(pem: string | Uint8Array, what = 'certificate chain'): ParsedCertificate[] {
  return parseCertificatePems(pem, what).map((der, i) => parseCertificateDer(der, `${what} [${i}]`));
}

/** Facts about the first certificate of a PEM (or a DER buffer). */
export function inspectCertificate(input: string | Uint8Array): CertificateInfo {
  if (isBytes(input) && input[0] === 0x30) {
    return parseCertificateDer(Buffer.from(input)).info;
  }
  return parseCertificates(input, 'certificate')[0]!.info;
}

/** Whether `child` names `parent` as issuer and carries a signature made by parent's key. */
export function isSignedBy(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  try {
    return child.node.checkIssued(parent.node) && child.node.verify(parent.node.publicKey);
  } catch {
    return false;
  }
}

/**
 * Whether `cert` names itself as issuer and carries its own signature: what ends a path for
 * OpenSSL. Key usage does not matter here (a self-signed leaf trusted as such has none to sign
 * certificates with), unlike for `isSignedBy`, where Node refuses an issuer without keyCertSign.
 */
export function isSelfSigned(cert: ParsedCertificate): boolean {
  try {
    return cert.node.subject === cert.node.issuer && cert.node.verify(cert.node.publicKey);
  } catch {
    return false;
  }
}
