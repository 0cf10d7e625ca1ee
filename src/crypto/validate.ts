/**
 * Bundle validation: the gate every certificate passes before it is stored or served. It answers
 * "would serving this key and chain for these names work, now, for this purpose?" and says why
 * not with a typed error. It collects every problem rather than stopping at the first, so a
 * rollback event can tell the operator everything that is wrong at once.
 */
import type { KeyObject } from 'node:crypto';
import { CertkeeperError, type ErrorCode, isCertkeeperError } from '../errors.js';
import {
  type CertificateInfo,
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  isSelfSigned,
  isSignedBy,
  type ParsedCertificate,
  parseCertificates,
} from './inspect.js';
import { PrivateKey } from './keys.js';
import { type Identifier, nameCovered, parseName } from './names.js';

export type Purpose = 'server' | 'client' | 'both' | 'any';

export interface BundleInput {
  /** The private key (PEM or PrivateKey). */
  key: string | Uint8Array | PrivateKey;
  /** Leaf first, then intermediates; a trailing root is allowed. */
  chain: string | Uint8Array;
  /** Every name the leaf must cover. */
  names?: readonly string[];
  /** Default `server`. */
  purpose?: Purpose;
  /** Root certificates (PEM, one or many per string) the chain must end at. Omitted: not checked. */
  trustAnchors?: string | readonly string[];
  /** Default: the current time. */
  now?: Date;
  /** Tolerated clock difference with the issuer for notBefore, in ms. Default 60 000. */
  skewMs?: number;
}

export type BundleVerdict =
  | { ok: true; leaf: CertificateInfo; chain: CertificateInfo[] }
  | { ok: false; error: CertkeeperError; problems: CertkeeperError[] };

export const DEFAULT_SKEW_MS = 60_000;

function problem(code: ErrorCode, message: string, details: Record<string, unknown> = {}): CertkeeperError {
  return new CertkeeperError(code, message, { details });
}

function loadKey(key: BundleInput['key']): PrivateKey {
  return key instanceof PrivateKey ? key : PrivateKey.fromPem(key);
}

function loadAnchors(anchors: BundleInput['trustAnchors']): ParsedCertificate[] {
  if (anchors === undefined) return [];
  const list = typeof anchors === 'string' ? [anchors] : anchors;
  return list.flatMap((pem) => parseCertificates(pem, 'trust anchors'));
}

function samePublicKey(key: PrivateKey, b: KeyObject): boolean {
  return key.publicKeyDer().equals(b.export({ type: 'spki', format: 'der' }));
}

/** Checks order and signatures: each certificate must be signed by the next, and each issuer be a CA. */
function checkChain(chain: ParsedCertificate[]): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i + 1]!;
    if (!isSignedBy(child, parent)) {
      const actual = chain.findIndex((c, j) => j !== i && isSignedBy(child, c));
      const hint = actual >= 0 ? ` (it is signed by certificate ${actual}: the chain is out of order)` : '';
      problems.push(
        problem('CHAIN_INVALID', `certificate ${i} is not signed by certificate ${i + 1}${hint}`, {
          index: i,
          issuer: child.info.issuer,
        }),
      );
    } else if (!parent.info.isCA) {
      problems.push(
        problem('CHAIN_INVALID', `certificate ${i + 1} signs certificate ${i} but is not a CA`, {
          index: i + 1,
        }),
      );
    }
  }
  return problems;
}

function checkAnchors(chain: ParsedCertificate[], anchors: ParsedCertificate[]): CertkeeperError[] {
  const last = chain[chain.length - 1]!;
  const anchored =
    anchors.some((a) => a.info.fingerprint256 === last.info.fingerprint256) ||
    anchors.some((a) => a.info.isCA && isSignedBy(last, a));
  if (anchored) return [];
  const why = isSelfSigned(last)
    ? 'ends at a self-signed certificate that is not a trust anchor'
    : 'does not end at a trust anchor';
  return [
    problem('UNTRUSTED_ROOT', `chain ${why} (last issuer: ${last.info.issuer})`, {
      issuer: last.info.issuer,
      anchors: anchors.map((a) => a.info.subject),
    }),
  ];
}

function checkValidity(chain: ParsedCertificate[], now: number, skewMs: number): CertkeeperError[] {
  const problems: CertkeeperError[] = [];
  chain.forEach((cert, i) => {
    const which = i === 0 ? 'leaf certificate' : `chain certificate ${i}`;
    const { notBefore, notAfter } = cert.info;
    // Expiry is never forgiven: a certificate that expired a second ago fails every handshake.
    if (notAfter.getTime() <= now) {
      problems.push(problem('EXPIRED', `${which} expired at ${notAfter.toISOString()}`, { index: i }));
    } else if (notBefore.getTime() - skewMs > now) {
      problems.push(
        problem('NOT_YET_VALID', `${which} is not valid before ${notBefore.toISOString()}`, { index: i }),
      );
    }
  });
  return problems;
}

function checkPurpose(leaf: CertificateInfo, purpose: Purpose): CertkeeperError[] {
  if (purpose === 'any' || leaf.extKeyUsage === null) return [];
  const needed =
    purpose === 'both'
      ? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH]
      : [purpose === 'server' ? EKU_SERVER_AUTH : EKU_CLIENT_AUTH];
  const missing = needed
    .map((oid) => (oid === EKU_SERVER_AUTH ? 'serverAuth' : 'clientAuth'))
    .filter((name) => !leaf.extKeyUsage!.includes(name));
  if (missing.length === 0) return [];
  return [
    problem('WRONG_PURPOSE', `leaf certificate lacks extended key usage ${missing.join(' and ')}`, {
      missing,
      present: leaf.extKeyUsage,
    }),
  ];
}

function checkNames(leaf: CertificateInfo, wanted: Identifier[]): CertkeeperError[] {
  const sans = leaf.names.map((n) => parseName(n));
  const uncovered = wanted.filter((w) => !nameCovered(w, sans)).map((w) => w.value);
  if (uncovered.length === 0) return [];
  return [
    problem('NAME_NOT_COVERED', `leaf certificate does not cover ${uncovered.join(', ')}`, {
      uncovered,
      sans: leaf.names,
    }),
  ];
}

/**
 * Validates a key and chain. Input that cannot be parsed at all (bad PEM, bad names) yields a
 * verdict with that single problem; otherwise every check runs and all problems are reported.
 * An EKU extension that is absent is accepted for any purpose, as RFC 5280 and OpenSSL do.
 */
export function validateBundle(input: BundleInput): BundleVerdict {
  let chain: ParsedCertificate[];
  let key: PrivateKey;
  let anchors: ParsedCertificate[];
  let wanted: Identifier[];
  try {
    chain = parseCertificates(input.chain);
    key = loadKey(input.key);
    anchors = loadAnchors(input.trustAnchors);
    wanted = (input.names ?? []).map((n) => parseName(n));
  } catch (error) {
    if (!isCertkeeperError(error)) throw error;
    return { ok: false, error, problems: [error] };
  }
  const leaf = chain[0]!;
  const now = (input.now ?? new Date()).getTime();
  const problems: CertkeeperError[] = [];
  if (!samePublicKey(key, leaf.node.publicKey)) {
    problems.push(
      problem('KEY_MISMATCH', 'private key does not match the leaf certificate', {
        keyFingerprint: key.publicKeyFingerprint(),
        leafSerial: leaf.info.serialNumber,
      }),
    );
  }
  problems.push(...checkChain(chain));
  if (input.trustAnchors !== undefined) problems.push(...checkAnchors(chain, anchors));
  problems.push(...checkNames(leaf.info, wanted));
  problems.push(...checkValidity(chain, now, input.skewMs ?? DEFAULT_SKEW_MS));
  problems.push(...checkPurpose(leaf.info, input.purpose ?? 'server'));
  if (problems.length > 0) return { ok: false, error: problems[0]!, problems };
  return { ok: true, leaf: leaf.info, chain: chain.map((c) => c.info) };
}

/** `validateBundle` that throws the first problem. */
export function assertValidBundle(input: BundleInput): { leaf: CertificateInfo; chain: CertificateInfo[] } {
  const verdict = validateBundle(input);
  if (!verdict.ok) throw verdict.error;
  return verdict;
}
