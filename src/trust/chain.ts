/**
 * Does a certificate chain still lead to one of these anchors? The question the trust store's
 * guard asks of every protected chain before it accepts a new bundle.
 *
 * Signatures are checked (Node's `checkIssued` for names and key identifiers, then `verify` for
 * the signature), not only names: two roots of one CA share most of their subject, and a rotated
 * root must not pass for its predecessor. Validity dates are not checked: a certificate being
 * served is protected whether or not it has expired (renewal is the manager's job, not trust's).
 */
import { isSignedBy, type ParsedCertificate, parseCertificates } from '../crypto/inspect.js';

/**
 * Walks from the leaf up through the certificates of `chain` (any order after the leaf) until one
 * is an anchor or is signed by an anchor. Bounded by the chain's length.
 */
export function chainsToAnchor(
  chain: readonly ParsedCertificate[],
  anchors: readonly ParsedCertificate[],
): boolean {
  const anchorPrints = new Set(anchors.map((a) => a.info.fingerprint256));
  let current = chain[0];
  const unused = chain.slice(1);
  for (let steps = 0; current && steps <= chain.length; steps++) {
    const cert: ParsedCertificate = current;
    if (anchorPrints.has(cert.info.fingerprint256)) return true;
    if (anchors.some((anchor) => isSignedBy(cert, anchor))) return true;
    const index = unused.findIndex((candidate) => isSignedBy(cert, candidate));
    if (index < 0) return false;
    [current] = unused.splice(index, 1);
  }
  return false;
}

/** `chainsToAnchor` on PEM texts; an unparsable chain never chains. */
export function pemChainsToAnchor(chainPem: string, anchors: readonly ParsedCertificate[]): boolean {
  try {
    return chainsToAnchor(parseCertificates(chainPem, 'protected chain'), anchors);
  } catch {
    return false;
  }
}
