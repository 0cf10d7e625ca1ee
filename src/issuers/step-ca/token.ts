/**
 * One-time tokens as the enrolling service sees them. The service cannot verify a token (only
 * the CA holds the provisioner's public key), so it reads the claims without verification and
 * uses them for exactly two things: to refuse, before spending it, a token the CA would refuse
 * (expired, not yet valid, for another CA, for another root, for other names), and to remember
 * that it was spent. It is trusted for nothing else: the names certified are the configured
 * ones, and the CA decides whether the token is genuine.
 *
 * A token is a bearer credential. It never appears in a message, an event, a log line or the
 * store; only a SHA-256 of its `jti` is kept, to recognise it again.
 */
import { createHash } from 'node:crypto';
import { parseName } from '../../crypto/names.js';
import { CertkeeperError } from '../../errors.js';

/** step-ca validates times with one minute of leeway; the client uses the same, so it never refuses a token the CA would take. */
export const TOKEN_LEEWAY_MS = 60_000;

/** The claims of a step-ca one-time token that certkeeper checks before presenting it. */
export interface TokenClaims {
  iss: string | null;
  sub: string | null;
  aud: string[];
  /** `sans`, or `[sub]` when absent (step-ca's default). */
  sans: string[];
  nbf: number | null;
  exp: number | null;
  iat: number | null;
  jti: string | null;
  /** Root fingerprint the token was minted for (lowercase hex), if any. */
  sha: string | null;
}

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Whether a string has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(value: string): boolean {
  return JWS.test(value.trim());
}

function malformed(reason: string): CertkeeperError {
  // No `cause`: a JSON.parse error message quotes the text it failed on, i.e. the token.
  return new CertkeeperError('TOKEN_MALFORMED', `one-time token is malformed: ${reason}`, {
    details: { reason },
  });
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw malformed(`its ${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(`its ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Reads the claims of a compact JWS without verifying it. */
export function readToken(token: string): TokenClaims {
  const trimmed = token.trim();
  if (!JWS.test(trimmed)) throw malformed('not a compact JWT (three base64url parts)');
  const [headerPart, payloadPart] = trimmed.split('.');
  const header = decodeSegment(headerPart!, 'header');
  if (typeof header.alg !== 'string' || header.alg === 'none')
    throw malformed('it has no signature algorithm');
  const claims = decodeSegment(payloadPart!, 'payload');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  const sub = str(claims.sub);
  const sans = Array.isArray(claims.sans)
    ? claims.sans.filter((s): s is string => typeof s === 'string')
    : [];
  return {
    iss: str(claims.iss),
    sub,
    aud: aud.filter((a): a is string => typeof a === 'string'),
    sans: sans.length > 0 ? sans : sub ? [sub] : [],
    nbf: num(claims.nbf),
    exp: num(claims.exp),
    iat: num(claims.iat),
    jti: str(claims.jti),
    sha: str(claims.sha)?.toLowerCase().replace(/[:-]/g, '') ?? null,
  };
}

/**
 * The identity under which a spent token is remembered: SHA-256 of its `jti` (of the whole token
 * when it has none, as step-ca does). A hash, so the store holds nothing a thief could present.
 */
export function tokenId(token: string, claims: TokenClaims): string {
  const basis = claims.jti ? `jti:${claims.jti}` : `token:${token.trim()}`;
  return createHash('sha256').update(basis).digest('hex');
}

export interface TokenExpectations {
  /** The CA URL this service enrolls with: the token's audience must name its host. */
  caUrl: URL;
  /** The endpoint the token is for (`1.0/sign`, `1.0/revoke`). */
  endpoint: string;
  /** The pinned root's fingerprint: a token carrying `sha` must name it. */
  rootFingerprint: string;
  /** The configured names (normalised): they must equal the token's SANs. */
  names?: readonly string[];
  now: number;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * Throws the typed error for the first reason the CA would refuse this token, checking in the
 * order an operator fixes things: wrong CA, wrong root, wrong names, then time.
 */
export function checkToken(claims: TokenClaims, expect: TokenExpectations): void {
  // The CA matches audiences by URL with the port ignored; so do we, on host and path.
  const wantPath = new URL(expect.endpoint, `${expect.caUrl.href.replace(/\/?$/, '/')}`).pathname;
  const audienceOk = claims.aud.some((a) => {
    try {
      const url = new URL(a);
      return url.hostname.toLowerCase() === expect.caUrl.hostname.toLowerCase() && url.pathname === wantPath;
    } catch {
      return false;
    }
  });
  if (!audienceOk) {
    throw new CertkeeperError(
      'TOKEN_AUDIENCE_MISMATCH',
      `one-time token is for ${claims.aud.join(', ') || 'no audience'}, not for ${expect.caUrl.origin}${wantPath}: ` +
        'mint it with the CA URL this service uses',
      { details: { audience: claims.aud, caUrl: expect.caUrl.origin } },
    );
  }
  if (claims.sha && claims.sha !== expect.rootFingerprint) {
    throw new CertkeeperError(
      'TOKEN_ROOT_MISMATCH',
      `one-time token was minted for root ${claims.sha}, but this service pins root ${expect.rootFingerprint}`,
      { details: { tokenRoot: claims.sha, pinnedRoot: expect.rootFingerprint } },
    );
  }
  if (expect.names) checkNames(claims, expect.names);
  const now = expect.now;
  if (claims.exp === null || now - TOKEN_LEEWAY_MS > claims.exp * 1000) {
    const when = claims.exp === null ? 'has no expiry' : `expired at ${iso(claims.exp)}`;
    throw new CertkeeperError('TOKEN_EXPIRED', `one-time token ${when}: mint a new one`, {
      details: { exp: claims.exp },
    });
  }
  const start = Math.max(claims.nbf ?? 0, claims.iat ?? 0);
  if (now + TOKEN_LEEWAY_MS < start * 1000) {
    throw new CertkeeperError(
      'TOKEN_NOT_YET_VALID',
      `one-time token is not valid before ${iso(start)} (now ${new Date(now).toISOString()}): ` +
        'the clocks of the minting host and this host differ by more than a minute',
      { details: { nbf: claims.nbf, iat: claims.iat } },
    );
  }
}

/**
 * The configured names must be exactly the token's SANs. step-ca compares the CSR's names with
 * the token's as strings, so a token written `API.example` fails there even though it is the
 * same name: the mismatch is caught here, with a message that says so.
 */
function checkNames(claims: TokenClaims, names: readonly string[]): void {
  const wanted = [...new Set(names)].sort();
  const normalised: string[] = [];
  const invalid: string[] = [];
  for (const san of claims.sans) {
    try {
      normalised.push(parseName(san).value);
    } catch {
      invalid.push(san);
    }
  }
  const have = [...new Set(normalised)].sort();
  const same = invalid.length === 0 && have.length === wanted.length && have.every((n, i) => n === wanted[i]);
  const exact = same && claims.sans.every((s) => wanted.includes(s));
  if (exact) return;
  const hint = same
    ? ' (same names, but the CA compares them as written: use lower case, canonical form)'
    : '';
  throw new CertkeeperError(
    'TOKEN_NAMES_MISMATCH',
    `one-time token is for [${claims.sans.join(', ')}] but this certificate is configured for [${wanted.join(', ')}]${hint}`,
    { details: { tokenNames: claims.sans, configuredNames: wanted } },
  );
}
