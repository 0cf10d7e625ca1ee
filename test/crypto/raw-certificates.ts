// Certificates with any extensions at all, for the hostile-input tables: built with
// @peculiar/x509 directly (the library's own builder only makes well-formed ones), each extension
// given as it should appear or as raw DER.
import type { webcrypto as WebCrypto } from 'node:crypto';
import { randomSerial } from '../../src/crypto/certificate-builder.js';
import { type ParsedCertificate, parseCertificateDer } from '../../src/crypto/inspect.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { toPem } from '../../src/crypto/pem.js';
import { crypto, x509 } from '../../src/crypto/x509.js';

export interface RawAuthority {
  key: PrivateKey;
  /** Parsed by certkeeper on first use (which refuses some of these certificates). */
  certificate: ParsedCertificate;
  pem: string;
  /** As @peculiar/x509 decoded it, for signing below it whatever certkeeper thinks of it. */
  raw: x509.X509Certificate;
}

/** One SAN entry as raw bytes under a context tag: 2 dNSName, 7 iPAddress, 1 rfc822Name, 6 URI. */
export interface RawName {
  tag: number;
  bytes: Uint8Array | string;
}

export interface RawSpec {
  commonName?: string;
  /** Omitted: self-signed. */
  issuer?: RawAuthority;
  key?: PrivateKey;
  notBefore?: Date;
  notAfter?: Date;
  /** Omitted: leaf defaults (not a CA). null: no extension. */
  basic?: { ca: boolean; pathLength?: number; critical?: boolean } | null;
  /** x509.KeyUsageFlags bits; null: no extension; omitted: digitalSignature (leaf) or keyCertSign|cRLSign (CA). */
  keyUsage?: number | null;
  /** Dotted OIDs; null or omitted: no extension. */
  eku?: string[] | null;
  /** SAN entries as DNS/IP strings or raw names; omitted or null: no extension. */
  san?: (string | RawName)[] | null;
  extensions?: x509.Extension[];
}

export const OID = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  anyEku: '2.5.29.37.0',
};

const HOUR = 3_600_000;

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function tlv(tag: number, content: Uint8Array): Uint8Array {
  return Uint8Array.from([tag, ...derLength(content.length), ...content]);
}

/** DER of a GeneralNames SEQUENCE from raw entries (so malformed ones can be written). */
export function rawSan(names: RawName[]): Uint8Array {
  const parts = names.map((n) => {
    const bytes = typeof n.bytes === 'string' ? Buffer.from(n.bytes, 'latin1') : n.bytes;
    return tlv(0x80 | n.tag, bytes);
  });
  const body = Uint8Array.from(parts.flatMap((p) => [...p]));
  return tlv(0x30, body);
}

/**
 * A critical nameConstraints extension. Subtrees are DNS names, `IP:addr/mask` (both dotted or
 * both IPv6) or raw names; `maximum` adds a [1] maximum to every subtree (which RFC 5280 forbids).
 */
export function nameConstraints(
  spec: { permitted?: (string | RawName)[]; excluded?: (string | RawName)[] },
  maximum?: number,
): x509.Extension {
  const subtrees = (names: (string | RawName)[]) =>
    names.map((n) => {
      const raw: RawName =
        typeof n === 'string' && n.startsWith('IP:')
          ? {
              tag: 7,
              bytes: Uint8Array.from([
                ...n
                  .slice(3)
                  .split('/')
                  .flatMap((part) => [...ipBytes(part)]),
              ]),
            }
          : toRaw(n);
      const base = rawSan([raw]).slice(2); // the GeneralName alone
      const max = maximum === undefined ? [] : [...tlv(0x81, Uint8Array.from([maximum]))];
      return tlv(0x30, Uint8Array.from([...base, ...max]));
    });
  const parts: number[] = [];
  if (spec.permitted)
    parts.push(...tlv(0xa0, Uint8Array.from(subtrees(spec.permitted).flatMap((t) => [...t]))));
  if (spec.excluded)
    parts.push(...tlv(0xa1, Uint8Array.from(subtrees(spec.excluded).flatMap((t) => [...t]))));
  return new x509.Extension('2.5.29.30', true, tlv(0x30, Uint8Array.from(parts)));
}

function ipBytes(ip: string): Uint8Array {
  if (ip.includes('.') && !ip.includes(':')) return Uint8Array.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Uint8Array.from(groups.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]));
}

function toRaw(name: string | RawName): RawName {
  if (typeof name !== 'string') return name;
  if (name.startsWith('IP:')) return { tag: 7, bytes: ipBytes(name.slice(3)) };
  return { tag: 2, bytes: name.startsWith('DNS:') ? name.slice(4) : name };
}

export async function rawCertificate(spec: RawSpec): Promise<RawAuthority> {
  const key = spec.key ?? (await PrivateKey.generate('ec-p256'));
  const keys = await key.cryptoKeyPair();
  const signer = spec.issuer?.key ?? key;
  const signerKeys = await signer.cryptoKeyPair();
  const now = Date.now();
  const basic = spec.basic === undefined ? { ca: false } : spec.basic;
  const isCA = basic?.ca ?? false;
  const extensions: x509.Extension[] = [];
  if (basic)
    extensions.push(new x509.BasicConstraintsExtension(basic.ca, basic.pathLength, basic.critical ?? true));
  const usage =
    spec.keyUsage === undefined
      ? isCA
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature
      : spec.keyUsage;
  if (usage !== null) extensions.push(new x509.KeyUsagesExtension(usage, true));
  if (spec.eku) extensions.push(new x509.ExtendedKeyUsageExtension(spec.eku, false));
  if (spec.san) extensions.push(new x509.Extension('2.5.29.17', false, rawSan(spec.san.map(toRaw))));
  extensions.push(
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as WebCrypto.CryptoKey, false, crypto),
  );
  const issuerKeyId = spec.issuer?.raw.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (issuerKeyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerKeyId, false));
  extensions.push(...(spec.extensions ?? []));
  const subject = `CN=${spec.commonName ?? (isCA ? 'Raw CA' : 'raw leaf')}`;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: spec.issuer ? spec.issuer.raw.subjectName : subject,
      notBefore: spec.notBefore ?? new Date(now - HOUR),
      notAfter: spec.notAfter ?? new Date(now + 24 * HOUR),
      publicKey: keys.publicKey,
      signingKey: signerKeys.privateKey,
      signingAlgorithm: signer.signingAlgorithm as WebCrypto.Algorithm,
      extensions,
    },
    crypto,
  );
  const der = Buffer.from(cert.rawData);
  const pem = toPem('CERTIFICATE', der);
  // A certificate certkeeper refuses to parse (the point of some rows) can still be served.
  let parsed: ParsedCertificate | undefined;
  return {
    key,
    pem,
    raw: cert,
    get certificate() {
      parsed ??= parseCertificateDer(der, 'raw certificate');
      return parsed;
    },
  };
}
