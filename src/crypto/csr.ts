/**
 * Certificate signing requests: one CSR for a set of names, signed by the certificate's key.
 * Names go into the subjectAltName extension (DNS and IP entries); the common name is optional
 * and defaults to the first DNS name when it fits the 64-character limit of X.520.
 */
import type { webcrypto as WebCrypto, webcrypto } from 'node:crypto';
import { CertkeeperError, describeCause, optionError } from '../errors.js';
import { describeValue, isBytes, isPlainObject } from './guards.js';
import { PrivateKey } from './keys.js';
import { canonicalIp, type Identifier, parseName, parseNames } from './names.js';
import { crypto, x509 } from './x509.js';

/** Options of `createCsr`. */
export interface CsrOptions {
  key: PrivateKey;
  names: readonly string[];
  /** A string sets the CN; `false` omits it; default: the first DNS name if ≤ 64 characters. */
  commonName?: string | false;
}

/** A certificate signing request, in PEM and DER, with the names it asks for. */
export interface Csr {
  pem: string;
  der: Buffer;
  names: Identifier[];
}

/** Escapes a value for @peculiar/x509's RFC 4514 name parser. */
export function rdnValue(value: string): string {
  if (typeof value !== 'string') {
    throw new CertkeeperError(
      'INVALID_NAME',
      `a subject name value must be a string, got ${describeValue(value)}`,
    );
  }
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

/** The SAN extension for parsed names; each is checked again, so a forged Identifier is refused. */
export function sanExtension(names: Identifier[]): x509.SubjectAlternativeNameExtension {
  if (!Array.isArray(names) || names.length === 0) {
    throw new CertkeeperError(
      'INVALID_NAME',
      `expected a non-empty list of parsed names, got ${describeValue(names)}`,
    );
  }
  const checked = names.map((n) => {
    const id = n && typeof n === 'object' && typeof n.value === 'string' ? parseName(n.value) : null;
    if (!id || id.type !== n.type) {
      throw new CertkeeperError('INVALID_NAME', 'expected parsed names (see parseNames)', {
        details: { reason: 'not a parsed name' },
      });
    }
    return id;
  });
  return new x509.SubjectAlternativeNameExtension(checked.map((n) => ({ type: n.type, value: n.value })));
}

/** The common name a CSR carries: a string of 1 to 64 printable characters (X.520's bound). */
function checkedCommonName(value: unknown): string | false | undefined {
  if (value === undefined || value === false) return value;
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > 64 ||
    [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
  ) {
    throw optionError('commonName', 'must be false or a string of 1 to 64 printable characters');
  }
  return value;
}

export async function createCsr(options: CsrOptions): Promise<Csr> {
  if (!isPlainObject(options))
    throw optionError('options', `must be an object, got ${describeValue(options)}`);
  if (!(options.key instanceof PrivateKey)) throw optionError('key', 'must be a PrivateKey');
  const names = parseNames(options.names);
  if (names.length === 0) throw new CertkeeperError('INVALID_NAME', 'a CSR needs at least one name');
  const commonName = checkedCommonName(options.commonName);
  const firstDns = names.find((n) => n.type === 'dns')?.value;
  const cn =
    commonName === false
      ? undefined
      : (commonName ?? (firstDns && firstDns.length <= 64 ? firstDns : undefined));
  const request = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: cn ? `CN=${rdnValue(cn)}` : undefined,
      keys: await options.key.cryptoKeyPair(),
      signingAlgorithm: options.key.signingAlgorithm as WebCrypto.Algorithm,
      extensions: [sanExtension(names)],
    },
    crypto,
  );
  const der = Buffer.from(request.rawData);
  return { pem: request.toString('pem'), der, names };
}

/** A SAN entry of a request as a name, typed as written: a DNS entry spelled like an IP is refused. */
function requestedName(item: { type: string; value: string }): Identifier {
  if (item.type === 'ip') {
    const ip = canonicalIp(item.value);
    if (ip === null)
      throw new CertkeeperError('INVALID_NAME', 'certificate request: an IP entry is not an address');
    return { type: 'ip', value: ip, wildcard: false };
  }
  const id = parseName(item.value);
  if (id.type !== 'dns') {
    throw new CertkeeperError(
      'INVALID_NAME',
      `certificate request: DNS entry "${id.value}" is spelled like an IP address`,
    );
  }
  return id;
}

/** Reads the names and subject of a CSR (PEM or DER) and checks its self-signature. */
export async function inspectCsr(input: string | Uint8Array): Promise<{
  commonName: string | null;
  names: Identifier[];
  signatureValid: boolean;
  /** The public key the request asks to certify. */
  publicKey: webcrypto.CryptoKey;
}> {
  if (typeof input !== 'string' && !isBytes(input)) {
    throw new CertkeeperError(
      'MALFORMED_PEM',
      `certificate request: expected PEM text or DER bytes, got ${describeValue(input)}`,
    );
  }
  let request: x509.Pkcs10CertificateRequest;
  let items: { type: string; value: string }[];
  try {
    request = new x509.Pkcs10CertificateRequest(typeof input === 'string' ? input : Buffer.from(input));
    const san = request.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
      | x509.SubjectAlternativeNameExtension
      | undefined;
    items = (san?.names.items ?? []).filter((i) => i.type === 'dns' || i.type === 'ip');
  } catch {
    throw new CertkeeperError('MALFORMED_PEM', 'certificate request: not a valid PKCS#10 structure');
  }
  const seen = new Set<string>();
  const names = items
    .map(requestedName)
    .filter((n) => !seen.has(`${n.type}:${n.value}`) && seen.add(`${n.type}:${n.value}`));
  let signatureValid: boolean;
  let publicKey: webcrypto.CryptoKey;
  try {
    signatureValid = await request.verify(crypto);
    publicKey = (await request.publicKey.export(crypto)) as webcrypto.CryptoKey;
  } catch (cause) {
    throw new CertkeeperError(
      'UNSUPPORTED_KEY',
      'certificate request: its key or signature algorithm is not supported',
      {
        details: { reason: describeCause(cause) },
      },
    );
  }
  return { commonName: request.subjectName.getField('CN')[0] ?? null, names, signatureValid, publicKey };
}
