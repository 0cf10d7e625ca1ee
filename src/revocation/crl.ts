/**
 * Reading a CRL about one of our own certificates, and believing it only when it is genuine.
 *
 * With OCSP gone from the public CAs, a CRL is how a CA says "this certificate is revoked"; a
 * service that does not read it learns of a revocation from its clients' failures. A CRL arrives
 * over plain HTTP from a URL in the certificate, so everything in it is checked before it counts:
 *
 * - it parses as a CRL (DER or PEM) and has no critical extension we do not understand (a delta
 *   CRL, a scope we cannot judge);
 * - its issuer is the certificate's issuer, by name and, when both carry one, by key id;
 * - its signature verifies with the issuer certificate's key (and that issuer certificate really
 *   signed ours);
 * - it is not from the future (beyond `skewMs`).
 *
 * The verdict: `revoked` when the serial is listed (a genuine CRL that lists it is believed even
 * past its nextUpdate: revocation is permanent), `good` when a current CRL does not list it,
 * `unknown` when the only CRL at hand is stale. Anything else is CRL_INVALID: such a CRL says
 * nothing, and the certificate keeps being served.
 */

import { isSignedBy, type ParsedCertificate } from '../crypto/inspect.js';
import { crypto, x509 } from '../crypto/x509.js';
import { CertkeeperError, describeCause } from '../errors.js';

/** RFC 5280 §5.3.1 reason names, by code. */
const REASONS: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

/** Extensions of a CRL (RFC 5280 §5.2) that do not change what its entries mean for our serial. */
const UNDERSTOOD = new Set([
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.20', // cRLNumber
  '2.5.29.18', // issuerAltName
  '2.5.29.28', // issuingDistributionPoint: a shard of the CA's CRL, as Let's Encrypt publishes
]);

export type CrlVerdict =
  | { status: 'good'; thisUpdate: Date; nextUpdate: Date }
  | { status: 'revoked'; reason: string; revokedAt: Date }
  | { status: 'unknown'; why: 'stale'; nextUpdate: Date | undefined };

export interface CheckCrlOptions {
  /** How far in the future thisUpdate may be (clocks differ). Default 5 min. */
  skewMs?: number;
}

function invalid(message: string, cause?: unknown): CertkeeperError {
  return new CertkeeperError('CRL_INVALID', message, cause === undefined ? {} : { cause });
}

/** A CRL from DER or PEM bytes, or CRL_INVALID. */
export function parseCrl(input: string | Uint8Array): x509.X509Crl {
  try {
    const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
    const crl = text.includes('-----BEGIN') ? new x509.X509Crl(text) : new x509.X509Crl(Buffer.from(input));
    void crl.thisUpdate; // parsed lazily in places: fail here, not later
    return crl;
  } catch (error) {
    throw invalid(`not a CRL (${describeCause(error)})`, error);
  }
}

const strip = (hex: string) => hex.toLowerCase().replace(/^(00)+(?=.)/, '');

/** A CRL found genuine for one issuer, indexed by serial. */
export interface CheckedCrl {
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Serial (lowercase hex, no leading zero bytes) → what the entry says. */
  revoked: Map<string, { reason: string; revokedAt: Date }>;
}

/**
 * Checks that `crl` is the genuine CRL of `issuer` at `now` (name, key id, signature, no critical
 * extension we cannot judge, not from the future) and indexes its entries; CRL_INVALID otherwise.
 */
export async function authenticateCrl(
  crl: x509.X509Crl,
  issuer: ParsedCertificate,
  now: number,
  options: CheckCrlOptions = {},
): Promise<CheckedCrl> {
  const issuerCert = new x509.X509Certificate(issuer.der);
  if (crl.issuer !== issuerCert.subject)
    throw invalid(
      `the CRL is issued by "${crl.issuer}", not by the certificate's issuer "${issuerCert.subject}"`,
    );
  const critical = crl.extensions.filter((e) => e.critical && !UNDERSTOOD.has(e.type)).map((e) => e.type);
  if (critical.length > 0)
    throw invalid(`the CRL has critical extensions certkeeper cannot judge: ${critical.join(', ')}`);
  const aki = crl.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (
    aki?.keyId &&
    issuer.info.subjectKeyId &&
    aki.keyId.toLowerCase() !== issuer.info.subjectKeyId.toLowerCase()
  )
    throw invalid("the CRL's authority key id is not the issuer's key");
  let verified = false;
  try {
    verified = await crl.verify({ publicKey: issuerCert }, crypto);
  } catch (error) {
    throw invalid(`the CRL's signature cannot be checked (${describeCause(error)})`, error);
  }
  if (!verified) throw invalid("the CRL's signature does not verify with the issuer's key");
  if (crl.thisUpdate.getTime() > now + (options.skewMs ?? 300_000))
    throw invalid(`the CRL is dated in the future (thisUpdate ${crl.thisUpdate.toISOString()})`);
  const revoked = new Map<string, { reason: string; revokedAt: Date }>();
  for (const entry of crl.entries) {
    const code = entry.reason ?? 0;
    revoked.set(strip(entry.serialNumber), {
      reason: REASONS[code] ?? `reason ${code}`,
      revokedAt: entry.revocationDate,
    });
  }
  return { thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked };
}

/** What an authenticated CRL says about `certificate` at `now`. */
export function verdictOf(checked: CheckedCrl, certificate: ParsedCertificate, now: number): CrlVerdict {
  const entry = checked.revoked.get(strip(certificate.info.serialNumber));
  if (entry) return { status: 'revoked', ...entry };
  const next = checked.nextUpdate;
  if (!next || next.getTime() <= now) return { status: 'unknown', why: 'stale', nextUpdate: next };
  return { status: 'good', thisUpdate: checked.thisUpdate, nextUpdate: next };
}

/**
 * What `crl` says about `certificate`, issued by `issuer`, at `now`. Throws CRL_INVALID when the
 * CRL is not the issuer's genuine CRL, or `issuer` did not sign `certificate`.
 */
export async function checkCrl(
  crl: x509.X509Crl,
  certificate: ParsedCertificate,
  issuer: ParsedCertificate,
  now: number,
  options: CheckCrlOptions = {},
): Promise<CrlVerdict> {
  if (!isSignedBy(certificate, issuer)) throw invalid('the issuer given did not sign the certificate');
  return verdictOf(await authenticateCrl(crl, issuer, now, options), certificate, now);
}

/** The http(s) URLs of a certificate's CRL distribution points, in order (others are ignored). */
export function crlUrls(certificate: ParsedCertificate): string[] {
  const ext = new x509.X509Certificate(certificate.der).getExtension(x509.CRLDistributionPointsExtension);
  const urls: string[] = [];
  for (const point of ext?.distributionPoints ?? []) {
    for (const name of point.distributionPoint?.fullName ?? []) {
      const uri = name.uniformResourceIdentifier;
      if (uri && /^https?:\/\//i.test(uri)) urls.push(uri);
    }
  }
  return urls;
}
