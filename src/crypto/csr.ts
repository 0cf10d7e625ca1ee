/**
 * Certificate signing requests: one CSR for a set of names, signed by the certificate's key.
 * Names go into the subjectAltName extension (DNS and IP entries); the common name is optional
 * and defaults to the first DNS name when it fits the 64-character limit of X.520.
 */
import type { webcrypto as WebCrypto, webcrypto } from 'node:crypto';
import { CertkeeperError } from '../errors.js';
import type { PrivateKey } from './keys.js';
import { type Identifier, parseNames } from './names.js';
import { crypto, x509 } from './x509.js';

export interface CsrOptions {
  key: PrivateKey;
  names: readonly string[];
  /** A string sets the CN; `false` omits it; default: the first DNS name if ≤ 64 characters. */
  commonName?: string | false;
}

export interface Csr {
  pem: string;
  der: Buffer;
  names: Identifier[];
}

/** Escapes a value for @peculiar/x509's RFC 4514 name parser. */
export function rdnValue(value: string): string {
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

export function sanExtension(names: Identifier[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: n.type, value: n.value })));
}

export async function createCsr(options: CsrOptions): Promise<Csr> {
  const names = parseNames(options.names);
  if (names.length === 0) throw new CertkeeperError('INVALID_NAME', 'a CSR needs at least one name');
  const firstDns = names.find((n) => n.type === 'dns')?.value;
  const cn =
    options.commonName === false
      ? undefined
      : (options.commonName ?? (firstDns && firstDns.length <= 64 ? firstDns : undefined));
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

/** Reads the names and subject of a CSR (PEM or DER) and checks its self-signature. */
export async function inspectCsr(input: string | Uint8Array): Promise<{
  commonName: string | null;
  names: Identifier[];
  signatureValid: boolean;
  /** The public key the request asks to certify. */
  publicKey: webcrypto.CryptoKey;
}> {
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(typeof input === 'string' ? input : Buffer.from(input));
  } catch {
    throw new CertkeeperError('MALFORMED_PEM', 'certificate request: not a valid PKCS#10 structure');
  }
  const san = request.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
    | x509.SubjectAlternativeNameExtension
    | undefined;
  const raw = (san?.names.items ?? []).filter((i) => i.type === 'dns' || i.type === 'ip').map((i) => i.value);
  return {
    commonName: request.subjectName.getField('CN')[0] ?? null,
    names: parseNames(raw),
    signatureValid: await request.verify(crypto),
    publicKey: (await request.publicKey.export(crypto)) as webcrypto.CryptoKey,
  };
}
