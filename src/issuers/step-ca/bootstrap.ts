/**
 * Bootstrap: from "CA URL + root fingerprint" to a pinned root.
 *
 * The first request, `GET /root/{fingerprint}`, is made without TLS verification: there is
 * nothing to verify against yet. What makes it safe is the check that follows: the returned
 * root must hash (SHA-256 of its DER) to the fingerprint the operator configured. From then on
 * every CA call trusts only that root, so a man in the middle of the bootstrap can at most make
 * it fail, never substitute its own CA.
 */
import { createHash } from 'node:crypto';
import { type ParsedCertificate, parseCertificates } from '../../crypto/inspect.js';
import { CertkeeperError, isCertkeeperError } from '../../errors.js';
import { caRequest } from './transport.js';

/** Lowercase hex of a fingerprint written any common way (`AB:CD…`, `ab-cd…`, spaces). */
export function normalizeFingerprint(value: string): string | null {
  const hex = value
    .trim()
    .toLowerCase()
    .replace(/[\s:-]/g, '');
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

/** SHA-256 of the DER of the first certificate in `pem`, lowercase hex (step-ca's fingerprint). */
export function rootFingerprint(pem: string): string {
  return createHash('sha256').update(parseCertificates(pem, 'root certificate')[0]!.der).digest('hex');
}

/** Parses a root certificate PEM and checks that it is a self-signed CA. */
export function parseRoot(pem: string, what: string): ParsedCertificate {
  const [root] = parseCertificates(pem, what);
  if (!root!.info.isCA) {
    throw new CertkeeperError('CHAIN_INVALID', `${what} is not a CA certificate`, {
      details: { subject: root!.info.subject },
    });
  }
  return root!;
}

/**
 * The pinned root from a PEM read where others may write (the store's cached copy): exactly one
 * certificate, hashing to `fingerprint`, a CA. Anything else is null, never a partial answer: the
 * whole PEM becomes the CA connection's `ca` and `trustAnchors()`, so one certificate appended
 * after the pinned one would be trusted as much as it.
 */
export function pinnedRoot(pem: string, fingerprint: string): string | null {
  let certificates: ParsedCertificate[];
  try {
    certificates = parseCertificates(pem, 'cached root');
  } catch {
    return null;
  }
  if (certificates.length !== 1) return null;
  const [root] = certificates;
  if (!root!.info.isCA) return null;
  return createHash('sha256').update(root!.der).digest('hex') === fingerprint ? root!.pem : null;
}

export interface BootstrapOptions {
  caUrl: URL;
  fingerprint: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

function mismatch(expected: string, received: string[], caUrl: URL, how: string): CertkeeperError {
  const got = received.length > 0 ? received.join(', ') : 'none';
  return new CertkeeperError(
    'ROOT_FINGERPRINT_MISMATCH',
    `root fingerprint mismatch at ${caUrl.origin}: configured ${expected}, ${how} ${got}. ` +
      'Check the fingerprint (step certificate fingerprint root_ca.crt) and that the URL is the right CA',
    { details: { expected, received } },
  );
}

function fingerprintsOf(pems: unknown): string[] {
  if (!Array.isArray(pems)) return [];
  const out: string[] = [];
  for (const pem of pems) {
    try {
      if (typeof pem === 'string') out.push(rootFingerprint(pem));
    } catch {
      // an unreadable entry names nothing
    }
  }
  return out;
}

/** `path` under the CA URL, which may itself have a path (`https://host/step-ca` → `/step-ca/roots`). */
function underCa(path: string, caUrl: URL): URL {
  return new URL(path, caUrl.href.replace(/\/?$/, '/'));
}

/** Fetches the root named by `fingerprint` without verification and checks its hash. */
export async function fetchRoot(options: BootstrapOptions): Promise<string> {
  const { caUrl, fingerprint } = options;
  const common = { insecure: true, timeoutMs: options.timeoutMs, signal: options.signal } as const;
  let data: unknown;
  try {
    ({ data } = await caRequest({ ...common, method: 'GET', url: underCa(`root/${fingerprint}`, caUrl) }));
  } catch (error) {
    // step-ca answers 404 for a fingerprint it does not hold. Name what it does hold, so the
    // operator sees both fingerprints side by side (still unverified: used only for the message).
    if (!isCertkeeperError(error, 'CA_REFUSED') || error.details.status !== 404) throw error;
    let roots: string[] = [];
    try {
      const answer = await caRequest({ ...common, method: 'GET', url: underCa('roots', caUrl) });
      roots = fingerprintsOf((answer.data as { crts?: unknown }).crts);
    } catch {
      // the 404 is the answer; the list is only a courtesy
    }
    throw mismatch(fingerprint, roots, caUrl, 'the CA has no such root; it offers');
  }
  const pem = (data as { ca?: unknown }).ca;
  if (typeof pem !== 'string') {
    throw new CertkeeperError(
      'ISSUER_FAILED',
      `GET ${caUrl.origin}/root: the answer has no "ca" certificate`,
    );
  }
  let received: string;
  try {
    received = rootFingerprint(pem);
  } catch (error) {
    throw new CertkeeperError('ISSUER_FAILED', `GET ${caUrl.origin}/root: the answer is not a certificate`, {
      cause: error,
    });
  }
  if (received !== fingerprint) throw mismatch(fingerprint, [received], caUrl, 'the CA sent a root with');
  parseRoot(pem, `root certificate from ${caUrl.origin}`);
  return parseCertificates(pem)[0]!.pem;
}
