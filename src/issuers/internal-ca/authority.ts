/**
 * The embedded CA's certificates: making roots and intermediates, re-signing a root for its own
 * key, and the checks that bind each certificate to its key and to the certificate that signed it.
 *
 * Backdating (clock skew between the CA's host and the peers that verify):
 * - CA certificates (roots, intermediates) start `CA_BACKDATE_MS` (1 hour) before they are made.
 * - Leaves start `leafBackdateMs(lifetime)` before: 1 minute, at most a tenth of their lifetime
 *   (a 1 s test certificate is backdated 100 ms), as step-ca does by default.
 * A CA certificate that is still not valid when it is used (the CA was made while the clock ran
 * ahead) is replaced, not waited for: see `heal` in `transitions.ts`.
 */
import { createCertificate } from '../../crypto/certificate-builder.js';
import type { ParsedCertificate } from '../../crypto/inspect.js';
import { type KeyType, PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError } from '../../errors.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** How far before "now" a CA certificate's validity starts. */
export const CA_BACKDATE_MS = HOUR;

/** How far before "now" a leaf's validity starts. */
export function leafBackdateMs(lifetimeMs: number): number {
  return Math.min(MINUTE, lifetimeMs / 10);
}

export interface Authority {
  key: PrivateKey;
  certificate: ParsedCertificate;
}

/** A root: its key is null when it is kept offline (only the certificate is in the store). */
export interface RootAuthority {
  key: PrivateKey | null;
  certificate: ParsedCertificate;
}

/** What the CA is configured to make. */
export interface CaProfile {
  name: string;
  keyType: KeyType;
  leafLifetimeMs: number;
  intermediateLifetimeMs: number;
  rootLifetimeMs: number;
}

export async function makeRoot(profile: CaProfile, now: number, rotated: boolean): Promise<Authority> {
  const key = await PrivateKey.generate(profile.keyType);
  // A rotated root gets its own subject (dated): peers, logs and OpenSSL's lookup by subject
  // tell the two roots apart while both are trusted.
  const stamp = rotated ? ` ${new Date(now).toISOString().replace(/[-:]|\.\d+/g, '')}` : '';
  const certificate = await createCertificate({
    publicKey: key,
    subject: `CN=${profile.name} Root CA${stamp},O=certkeeper`,
    notBefore: new Date(now - CA_BACKDATE_MS),
    notAfter: new Date(now + profile.rootLifetimeMs),
    isCA: true,
    pathLength: 1,
  });
  return { key, certificate };
}

export async function makeIntermediate(profile: CaProfile, root: Authority, now: number): Promise<Authority> {
  const key = await PrivateKey.generate(profile.keyType);
  const certificate = await createCertificate({
    publicKey: key,
    issuer: root,
    subject: `CN=${profile.name} Intermediate CA,O=certkeeper`,
    notBefore: new Date(now - CA_BACKDATE_MS),
    notAfter: new Date(
      Math.min(now + profile.intermediateLifetimeMs, root.certificate.info.notAfter.getTime()),
    ),
    isCA: true,
    pathLength: 0,
  });
  return { key, certificate };
}

/**
 * The same root (key, subject, key identifier, end of validity) with a validity that starts now:
 * everything the old certificate signed verifies under the new one.
 */
export async function resignRoot(root: Authority, now: number): Promise<Authority> {
  const certificate = await createCertificate({
    publicKey: root.key,
    sameSubjectAs: root.certificate,
    notBefore: new Date(now - CA_BACKDATE_MS),
    notAfter: root.certificate.info.notAfter,
    isCA: true,
    pathLength: root.certificate.info.pathLength ?? 1,
  });
  return { key: root.key, certificate };
}

/** Whether `child` carries a signature by `parent`'s key, under `parent`'s name. */
export function signedBy(child: ParsedCertificate, parent: ParsedCertificate): boolean {
  try {
    return child.node.checkIssued(parent.node) && child.node.verify(parent.node.publicKey);
  } catch {
    return false;
  }
}

/** Throws CA_CORRUPT unless `certificate` is a self-signed CA certificate (a root kept offline). */
export function checkOfflineRoot(caName: string, certificate: ParsedCertificate): void {
  const fail = (why: string) =>
    new CertkeeperError('CA_CORRUPT', `internal CA ${caName}: root in the store is damaged (${why})`, {
      details: { which: 'root' },
    });
  if (!certificate.info.isCA) throw fail('not a CA certificate');
  if (!signedBy(certificate, certificate)) throw fail('not self-signed');
}

/**
 * Throws CA_CORRUPT unless `authority` is a CA certificate with its own key, signed by `signer`
 * (itself for a root). What a store writer without the encryption key could plant (a certificate
 * of theirs beside our sealed key, an intermediate from another root) fails here.
 */
export function checkAuthority(
  caName: string,
  which: string,
  authority: Authority,
  signers: readonly ParsedCertificate[] | 'self',
): void {
  const { certificate, key } = authority;
  const fail = (why: string) =>
    new CertkeeperError('CA_CORRUPT', `internal CA ${caName}: ${which} in the store is damaged (${why})`, {
      details: { which },
    });
  if (!certificate.info.isCA) throw fail('not a CA certificate');
  let matches = false;
  try {
    matches = certificate.node.checkPrivateKey(key.keyObject);
  } catch {
    // a key of another type: no match
  }
  if (!matches) throw fail('key does not match its certificate');
  const parents = signers === 'self' ? [certificate] : signers;
  if (!parents.some((parent) => signedBy(certificate, parent))) {
    throw fail(signers === 'self' ? 'not self-signed' : 'not signed by a root of this CA');
  }
}
