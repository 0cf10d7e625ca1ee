/**
 * Certification path checks: what OpenSSL's verifier (so every Node TLS client, curl and
 * `openssl verify`) checks of a chain beyond signatures and names, made here so that a bundle
 * certkeeper accepts is one those clients accept:
 *
 * - every issuer is a CA (basicConstraints cA; a trust anchor may instead carry keyUsage
 *   keyCertSign alone, as OpenSSL tolerates for the top of a path), and a keyUsage extension on
 *   an issuer includes keyCertSign;
 * - pathLenConstraint, counting the CAs below each issuer that are not self-issued (the trust
 *   anchor's own included: OpenSSL enforces it);
 * - extended key usage along the whole path: an issuer or anchor that carries the extension must
 *   list the purpose (anyExtendedKeyUsage alone is not enough for OpenSSL); the leaf's keyUsage,
 *   when present, must allow a TLS handshake for the purpose;
 * - no critical extension OpenSSL does not understand;
 * - the DNS and IP name constraints of every CA (name-constraints.ts);
 * - every certificate within its validity, the trust anchor included (notBefore forgiven by the
 *   caller's clock skew; expiry never).
 *
 * A path is `[leaf, ...issuers]`, each certificate signed by the next (checked by `checkLinks`).
 */
import { CertkeeperError, type ErrorCode } from '../errors.js';
import { isSignedBy, type ParsedCertificate } from './inspect.js';
import { commonNameAsDns, constraintViolation, ipSanHex } from './name-constraints.js';

/** What a certificate must be good for: server, client, both, or any. */
export type Purpose = 'server' | 'client' | 'both' | 'any';

export const PURPOSES: readonly Purpose[] = ['server', 'client', 'both', 'any'];

/** Longer chains are refused before any signature is checked: real ones have 2 to 4 certificates. */
export const MAX_CHAIN_LENGTH = 16;

/** Critical extensions OpenSSL's verifier handles (X509_supported_extension); others fail it. */
const HANDLED_CRITICAL = new Set([
  '2.16.840.1.113730.1.1', // Netscape certificate type
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.37', // extKeyUsage
  '1.3.6.1.5.5.7.1.7', // IP address delegation (RFC 3779)
  '1.3.6.1.5.5.7.1.8', // AS identifiers (RFC 3779)
  '1.3.6.1.5.5.7.48.1.5', // OCSP no check
  '2.5.29.36', // policyConstraints
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '2.5.29.30', // nameConstraints
  '2.5.29.33', // policyMappings
  '2.5.29.54', // inhibitAnyPolicy
]);

/** keyUsage bits that let a leaf take part in a TLS handshake, per purpose (OpenSSL's KU_TLS). */
const LEAF_KEY_USAGE: Record<'server' | 'client', string[]> = {
  server: ['digitalSignature', 'keyEncipherment', 'keyAgreement'],
  client: ['digitalSignature', 'keyAgreement'],
};

export interface PathOptions {
  purpose: Purpose;
  /** Milliseconds since the epoch. */
  now: number;
  /** Tolerated clock difference with the issuer for notBefore, in ms. */
  skewMs: number;
  /** Index of the trust anchor in the path (its last certificate), or null when none is known. */
  anchor: number | null;
}

function problem(code: ErrorCode, message: string, details: Record<string, unknown>): CertkeeperError {
  return new CertkeeperError(code, message, { details });
}

function which(i: number, anchor: number | null): string {
  if (i === 0) return 'leaf certificate';
  return i === anchor ? `trust anchor (certificate ${i})` : `chain certificate ${i}`;
}

/** Each certificate must be signed by the next: order and signatures, with a hint when shuffled. */
export function checkLinks(chain: readonly ParsedCertificate[]): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (isSignedBy(child, parent)) continue;
    const actual = chain.findIndex((c, j) => j !== i && isSignedBy(child, c));
    // Node's checkIssued also refuses an issuer whose keyUsage lacks keyCertSign: say so.
    const noCertSign = parent.info.keyUsage !== null && !parent.info.keyUsage.includes('keyCertSign');
    const hint =
      actual >= 0
        ? ` (it is signed by certificate ${actual}: the chain is out of order)`
        : noCertSign && signatureHolds(child, parent)
          ? ` (certificate ${i + 1} signed it, but its key usage does not include keyCertSign)`
          : '';
    problems.push(
      problem('CHAIN_INVALID', `certificate ${i} is not signed by certificate ${i + 1}${hint}`, {
        index: i,
        issuer: child.info.issuer,
      }),
    );
  }
  return problems;
}

function signatureHolds(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  try {
    return child.node.verify(parent.node.publicKey);
  } catch {
    return false;
  }
}

/** CHAIN_INVALID problems: issuers that may not issue, path lengths, unhandled critical extensions. */
export function checkIssuers(path: readonly ParsedCertificate[], anchor: number | null): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  // CAs between the leaf and the certificate being checked that are not self-issued.
  let below = 0;
  path.forEach((cert, i) => {
    const { info } = cert;
    const unhandled = info.criticalExtensions.filter((oid) => !HANDLED_CRITICAL.has(oid));
    if (unhandled.length > 0) {
      problems.push(
        problem(
          'CHAIN_INVALID',
          `${which(i, anchor)} has a critical extension clients do not handle (${unhandled.join(', ')})`,
          {
            index: i,
            extensions: unhandled,
          },
        ),
      );
    }
    if (i === 0) return;
    const isAnchor = i === anchor;
    const canSign = info.keyUsage === null || info.keyUsage.includes('keyCertSign');
    const isCA = info.isCA || (isAnchor && !info.basicConstraints && info.keyUsage !== null);
    if (!isCA) {
      problems.push(
        problem('CHAIN_INVALID', `certificate ${i} signs certificate ${i - 1} but is not a CA`, { index: i }),
      );
    } else if (!canSign) {
      problems.push(
        problem('CHAIN_INVALID', `${which(i, anchor)} is a CA whose key usage does not include keyCertSign`, {
          index: i,
          keyUsage: info.keyUsage,
        }),
      );
    }
    if (info.pathLength !== null && below > info.pathLength) {
      problems.push(
        problem(
          'CHAIN_INVALID',
          `${which(i, anchor)} allows ${info.pathLength} CA certificate(s) below it, the chain has ${below}`,
          { index: i, pathLength: info.pathLength },
        ),
      );
    }
    if (info.subject !== info.issuer) below++;
  });
  problems.push(...checkNameConstraints(path, anchor));
  return problems;
}

/**
 * Every DNS and IP name of each certificate below a CA with name constraints must satisfy them
 * (self-issued CAs are skipped, as OpenSSL skips them). A leaf without DNS SANs is held to the
 * DNS constraints by its common name when that reads as a host name, as OpenSSL does.
 */
function checkNameConstraints(path: readonly ParsedCertificate[], anchor: number | null): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  path.forEach(({ info: ca }, j) => {
    if (j === 0 || !ca.nameConstraints) return;
    for (let i = 0; i < j; i++) {
      const { info } = path[i]!;
      if (i > 0 && info.subject === info.issuer) continue;
      const cn = i === 0 && info.dnsNames.length === 0 ? commonNameAsDns(info.commonName) : null;
      const names = [
        ...info.dnsNames.map((value) => ({ type: 'dns' as const, value, shown: `DNS:${value}` })),
        ...(cn ? [{ type: 'dns' as const, value: cn, shown: `CN=${cn}` }] : []),
        ...info.ipAddresses.map((ip) => ({ type: 'ip' as const, value: ipSanHex(ip), shown: `IP:${ip}` })),
      ];
      for (const name of names) {
        const why = constraintViolation(name, ca.nameConstraints);
        if (why) {
          problems.push(
            problem(
              'CHAIN_INVALID',
              `${name.shown} of certificate ${i} is ${why} of ${which(j, anchor)}'s name constraints`,
              {
                index: i,
                constrainedBy: j,
                name: name.shown,
              },
            ),
          );
        }
      }
    }
  });
  return problems;
}

/** EXPIRED / NOT_YET_VALID for every certificate of the path, the trust anchor included. */
export function checkValidity(path: readonly ParsedCertificate[], options: PathOptions): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  path.forEach((cert, i) => {
    const { notBefore, notAfter } = cert.info;
    // Expiry is never forgiven: a certificate that expired a second ago fails every handshake.
    if (notAfter.getTime() <= options.now) {
      problems.push(
        problem('EXPIRED', `${which(i, options.anchor)} expired at ${notAfter.toISOString()}`, { index: i }),
      );
    } else if (notBefore.getTime() - options.skewMs > options.now) {
      problems.push(
        problem(
          'NOT_YET_VALID',
          `${which(i, options.anchor)} is not valid before ${notBefore.toISOString()}`,
          {
            index: i,
          },
        ),
      );
    }
  });
  return problems;
}

function ekuNames(purpose: Purpose): string[] {
  if (purpose === 'any') return [];
  if (purpose === 'both') return ['serverAuth', 'clientAuth'];
  return [purpose === 'server' ? 'serverAuth' : 'clientAuth'];
}

/**
 * WRONG_PURPOSE problems: the extended key usage of every certificate of the path and the leaf's
 * key usage. An absent extension allows every purpose, as RFC 5280 and OpenSSL have it.
 */
export function checkPurpose(path: readonly ParsedCertificate[], options: PathOptions): CertkeeperError[] {
  const needed = ekuNames(options.purpose);
  if (needed.length === 0) return [];
  const problems: CertkeeperError[] = [];
  path.forEach(({ info }, i) => {
    const missing = info.extKeyUsage === null ? [] : needed.filter((n) => !info.extKeyUsage!.includes(n));
    if (missing.length > 0) {
      problems.push(
        problem(
          'WRONG_PURPOSE',
          `${which(i, options.anchor)} lacks extended key usage ${missing.join(' and ')}`,
          {
            index: i,
            missing,
            present: info.extKeyUsage,
          },
        ),
      );
    }
  });
  const leaf = path[0]!.info;
  if (leaf.keyUsage !== null) {
    const refused = (needed as ('serverAuth' | 'clientAuth')[])
      .map((eku) => (eku === 'serverAuth' ? 'server' : 'client'))
      .filter((p) => !LEAF_KEY_USAGE[p].some((bit) => leaf.keyUsage!.includes(bit)));
    if (refused.length > 0) {
      problems.push(
        problem(
          'WRONG_PURPOSE',
          `leaf certificate key usage (${leaf.keyUsage.join(', ') || 'none'}) does not allow a TLS ${refused.join(' or ')} handshake`,
          { index: 0, keyUsage: leaf.keyUsage, refused },
        ),
      );
    }
  }
  return problems;
}
