/**
 * Bundle validation: the gate every certificate passes before it is stored or served. It answers
 * "would serving this key and chain for these names work, now, for this purpose?" and says why
 * not with a typed error. It collects every problem rather than stopping at the first, so a
 * rollback event can tell the operator everything that is wrong at once.
 *
 * "Work" means: every mainstream TLS client accepts it. Names are matched as Node's
 * `checkServerIdentity` and OpenSSL's `X509_check_host` both match them (names.ts), the chain is
 * checked as OpenSSL's verifier checks it (path.ts), up to a self-signed trust anchor. Two things
 * those two clients still accept are refused, because browsers refuse them: a name found only in
 * the subject common name, and partial-label wildcards (`f*.a.com`).
 */
import type { KeyObject } from 'node:crypto';
import { CertkeeperError, type ErrorCode, isCertkeeperError, optionError } from '../errors.js';
import { describeValue, isBytes, isPlainObject } from './guards.js';
import {
  type CertificateInfo,
  isSelfSigned,
  isSignedBy,
  type ParsedCertificate,
  parseCertificates,
} from './inspect.js';
import { PrivateKey } from './keys.js';
import { dnsSanCovers, dnsSanProblem, type Identifier, parseName } from './names.js';
import {
  checkIssuers,
  checkLinks,
  checkPurpose,
  checkValidity,
  MAX_CHAIN_LENGTH,
  type PathOptions,
  PURPOSES,
  type Purpose,
} from './path.js';

export type { Purpose } from './path.js';

/** What `validateBundle` checks: a key, its chain, and optionally names, anchors, purpose and time. */
export interface BundleInput {
  /** The private key (PEM or PrivateKey). */
  key: string | Uint8Array | PrivateKey;
  /** Leaf first, then intermediates; a trailing root is allowed. */
  chain: string | Uint8Array;
  /** Every name the leaf must cover. */
  names?: readonly string[];
  /** Default `server`. */
  purpose?: Purpose;
  /**
   * Root certificates (PEM, one or many per string) the chain must end at: the chain, completed
   * from these, must reach a self-signed one. Omitted: not checked.
   */
  trustAnchors?: string | readonly string[];
  /** Default: the current time. */
  now?: Date;
  /** Tolerated clock difference with the issuer for notBefore, in ms. Default 60 000. */
  skewMs?: number;
}

/** The outcome of `validateBundle`: the parsed chain, or the first problem and all of them. */
export type BundleVerdict =
  | { ok: true; leaf: CertificateInfo; chain: CertificateInfo[] }
  | { ok: false; error: CertkeeperError; problems: CertkeeperError[] };

/** The clock skew tolerated at validity boundaries by default (one minute). */
export const DEFAULT_SKEW_MS = 60_000;

function problem(code: ErrorCode, message: string, details: Record<string, unknown> = {}): CertkeeperError {
  return new CertkeeperError(code, message, { details });
}

function loadKey(key: unknown): PrivateKey {
  return key instanceof PrivateKey ? key : PrivateKey.fromPem(key as string);
}

function loadAnchors(anchors: unknown): ParsedCertificate[] {
  if (anchors === undefined) return [];
  const list = typeof anchors === 'string' || isBytes(anchors) ? [anchors] : anchors;
  if (!Array.isArray(list)) {
    throw new CertkeeperError(
      'MALFORMED_PEM',
      `trust anchors: expected PEM text or a list, got ${describeValue(anchors)}`,
    );
  }
  return list.flatMap((pem) => parseCertificates(pem, 'trust anchors'));
}

function loadNames(names: unknown): Identifier[] {
  if (names === undefined) return [];
  if (!Array.isArray(names))
    throw optionError('names', `must be a list of names, got ${describeValue(names)}`);
  return names.map((n) => parseName(n));
}

/** The options that are not certificate material: a wrong one is a programming error, thrown. */
function readOptions(input: unknown): { purpose: Purpose; now: number; skewMs: number } {
  if (!isPlainObject(input)) throw optionError('input', `must be an object, got ${describeValue(input)}`);
  const { purpose = 'server', now = new Date(), skewMs = DEFAULT_SKEW_MS } = input as Partial<BundleInput>;
  if (!PURPOSES.includes(purpose)) throw optionError('purpose', `must be one of ${PURPOSES.join(', ')}`);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw optionError('now', 'must be a valid Date');
  if (typeof skewMs !== 'number' || !(skewMs >= 0) || !Number.isFinite(skewMs))
    throw optionError('skewMs', 'must be a finite number >= 0');
  return { purpose, now: now.getTime(), skewMs };
}

function samePublicKey(key: PrivateKey, b: KeyObject): boolean {
  return key.publicKeyDer().equals(b.export({ type: 'spki', format: 'der' }));
}

/**
 * The trust anchors that complete `chain` up to a self-signed anchor (none when the chain's last
 * certificate is one), or null when it does not reach one. Among several issuers, one valid at
 * `now` is preferred, as OpenSSL prefers it. Bounded by the number of anchors.
 */
function completion(
  chain: ParsedCertificate[],
  anchors: ParsedCertificate[],
  now: number,
): ParsedCertificate[] | null {
  const prints = new Set(anchors.map((a) => a.info.fingerprint256));
  const added: ParsedCertificate[] = [];
  let top = chain[chain.length - 1]!;
  for (let steps = 0; steps <= anchors.length; steps++) {
    if (prints.has(top.info.fingerprint256) && isSelfSigned(top)) return added;
    const valid = (c: ParsedCertificate) =>
      c.info.notBefore.getTime() <= now && now < c.info.notAfter.getTime();
    const issuers = anchors.filter(
      (a) => !added.includes(a) && a.info.fingerprint256 !== top.info.fingerprint256 && isSignedBy(top, a),
    );
    const next = issuers.find(valid) ?? issuers[0];
    if (!next) return null;
    added.push(next);
    top = next;
  }
  return null;
}

function untrusted(chain: ParsedCertificate[], anchors: ParsedCertificate[]): CertkeeperError {
  const last = chain[chain.length - 1]!;
  const reached = anchors.some(
    (a) => a.info.fingerprint256 === last.info.fingerprint256 || isSignedBy(last, a),
  );
  const why = isSelfSigned(last)
    ? 'ends at a self-signed certificate that is not a trust anchor'
    : reached
      ? 'reaches a trust anchor that is not self-signed and that no other anchor issues (clients need a root)'
      : 'does not end at a trust anchor';
  return problem('UNTRUSTED_ROOT', `chain ${why} (last issuer: ${last.info.issuer})`, {
    issuer: last.info.issuer,
    anchors: anchors.map((a) => a.info.subject),
  });
}

function checkNames(leaf: CertificateInfo, wanted: Identifier[]): CertkeeperError[] {
  const covered = (w: Identifier) =>
    w.type === 'ip'
      ? leaf.ipAddresses.includes(w.value)
      : leaf.dnsNames.some((san) => dnsSanCovers(san, w.value));
  const uncovered = wanted.filter((w) => !covered(w)).map((w) => w.value);
  if (uncovered.length === 0) return [];
  const unusable = [
    ...leaf.dnsNames.flatMap((san) => {
      const reason = dnsSanProblem(san);
      return reason ? [{ san: `DNS:${san}`, reason }] : [];
    }),
    ...leaf.ipAddresses
      .filter((ip) => !ip.includes('.') && !ip.includes(':'))
      .map((ip) => ({
        san: `IP:${ip}`,
        reason: 'not a 4 or 16 byte address',
      })),
  ];
  const cnOnly =
    leaf.dnsNames.length === 0 &&
    leaf.commonName !== null &&
    uncovered.includes(leaf.commonName.toLowerCase());
  const notes = [
    ...unusable.map((u) => `${u.san}: ${u.reason}`),
    ...(cnOnly ? ['the name is only in the subject common name, which clients no longer match'] : []),
  ];
  return [
    problem(
      'NAME_NOT_COVERED',
      `leaf certificate does not cover ${uncovered.join(', ')}${notes.length ? ` (${notes.join('; ')})` : ''}`,
      { uncovered, sans: leaf.names, ...(unusable.length ? { unusable } : {}) },
    ),
  ];
}

/**
 * Validates a key and chain. Input that cannot be parsed at all (bad PEM, bad names) yields a
 * verdict with that single problem; otherwise every check runs and all problems are reported.
 * Options that are not certificate material (`purpose`, `now`, `skewMs`, the input itself) are
 * thrown as INVALID_OPTION. An EKU extension that is absent is accepted for any purpose, as
 * RFC 5280 and OpenSSL do.
 */
export function validateBundle(input: BundleInput): BundleVerdict {
  const options = readOptions(input);
  let chain: ParsedCertificate[];
  let key: PrivateKey;
  let anchors: ParsedCertificate[];
  let wanted: Identifier[];
  try {
    chain = parseCertificates(input.chain);
    key = loadKey(input.key);
    anchors = loadAnchors(input.trustAnchors);
    wanted = loadNames(input.names);
  } catch (error) {
    if (!isCertkeeperError(error) || error.code === 'INVALID_OPTION') throw error;
    return { ok: false, error, problems: [error] };
  }
  if (chain.length > MAX_CHAIN_LENGTH) {
    const error = problem(
      'CHAIN_INVALID',
      `chain has ${chain.length} certificates, more than ${MAX_CHAIN_LENGTH}`,
      {
        length: chain.length,
      },
    );
    return { ok: false, error, problems: [error] };
  }
  const leaf = chain[0]!;
  const problems: CertkeeperError[] = [];
  if (!samePublicKey(key, leaf.node.publicKey)) {
    problems.push(
      problem('KEY_MISMATCH', 'private key does not match the leaf certificate', {
        keyFingerprint: key.publicKeyFingerprint(),
        leafSerial: leaf.info.serialNumber,
      }),
    );
  }
  const links = checkLinks(chain);
  problems.push(...links);
  let path = chain;
  let anchor: number | null = isSelfSigned(chain[chain.length - 1]!) ? chain.length - 1 : null;
  if (input.trustAnchors !== undefined) {
    const added = completion(chain, anchors, options.now);
    if (added === null) {
      problems.push(untrusted(chain, anchors));
      anchor = null;
    } else {
      path = [...chain, ...added];
      anchor = path.length - 1;
    }
  }
  const pathOptions: PathOptions = { ...options, anchor };
  // Issuer constraints mean something only along a path whose links hold.
  if (links.length === 0) problems.push(...checkIssuers(path, anchor));
  problems.push(...checkNames(leaf.info, wanted));
  problems.push(...checkValidity(path, pathOptions));
  problems.push(...checkPurpose(links.length === 0 ? path : [leaf], pathOptions));
  if (problems.length > 0) return { ok: false, error: problems[0]!, problems };
  return { ok: true, leaf: leaf.info, chain: chain.map((c) => c.info) };
}

/** `validateBundle` that throws the first problem. */
export function assertValidBundle(input: BundleInput): { leaf: CertificateInfo; chain: CertificateInfo[] } {
  const verdict = validateBundle(input);
  if (!verdict.ok) throw verdict.error;
  return verdict;
}
