// The authorization and policy rules of the fake step-ca, one function per rule family, each
// rule commented with where it comes from (docs/platform.md#step-ca and step-ca's authority package).
// A rule that fails throws a `Refusal`: the HTTP status step-ca answers, and the reason step-ca
// would log (tests read the log to prove which rule fired; the client sees only the status and
// step-ca's public message).
import { X509Certificate } from 'node:crypto';
import { compactVerify, importJWK, type JWK } from 'jose';
import { canonicalIp } from '../../../src/crypto/names.js';
import { x509 } from '../../../src/crypto/x509.js';
import type { Provisioner } from './provisioner.js';

export class Refusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 501,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** step-ca validates nbf/exp/iat with one minute of leeway. */
export const LEEWAY_MS = 60_000;

export interface TokenParts {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** Reads a compact JWS without verifying it (step-ca's UnsafeClaimsWithoutVerification). */
export function parseJws(token: unknown): TokenParts {
  if (typeof token !== 'string' || token.split('.').length !== 3)
    throw new Refusal(401, 'error parsing token');
  const [h, c] = token.split('.');
  try {
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(c!, 'base64url').toString('utf8'));
    if (typeof header !== 'object' || typeof claims !== 'object' || !header || !claims) throw new Error();
    return { header, claims };
  } catch {
    throw new Refusal(401, 'error parsing token');
  }
}

const audiences = (claims: Record<string, unknown>): string[] =>
  (typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []).filter(
    (a): a is string => typeof a === 'string',
  );

/**
 * Audience rule (step-ca `matchesAudience` + `stripPort`): the token's `aud` must be
 * `https://<one of the CA's DNS names>[:any port]/1.0/<endpoint>`. The port is ignored, the
 * host is not: a CA reached under a name outside its DNS names refuses every token.
 */
export function audienceMatches(
  claims: Record<string, unknown>,
  dnsNames: string[],
  endpoint: string,
): boolean {
  return audiences(claims).some((a) => {
    try {
      const url = new URL(a);
      const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      return url.protocol === 'https:' && url.pathname === `/1.0/${endpoint}` && dnsNames.includes(host);
    } catch {
      return false;
    }
  });
}

/**
 * Time rules (go-jose `ValidateWithLeeway`, one minute): expired when now - leeway > exp; not
 * yet valid when now + leeway < nbf; issued in the future when now + leeway < iat.
 */
export function checkTimes(claims: Record<string, unknown>, now: number): void {
  const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  const nbf = typeof claims.nbf === 'number' ? claims.nbf * 1000 : undefined;
  const iat = typeof claims.iat === 'number' ? claims.iat * 1000 : undefined;
  if (exp !== undefined && now - LEEWAY_MS > exp) throw new Refusal(401, 'token is expired (exp)');
  if (nbf !== undefined && now + LEEWAY_MS < nbf) throw new Refusal(401, 'token not valid yet (nbf)');
  if (iat !== undefined && now + LEEWAY_MS < iat) throw new Refusal(401, 'token issued in the future (iat)');
}

async function verifySignature(token: string, jwk: JWK | X509Certificate, alg: string): Promise<void> {
  try {
    const key = jwk instanceof X509Certificate ? jwk.publicKey : await importJWK(jwk, alg);
    await compactVerify(token, key, { algorithms: [alg] });
  } catch {
    throw new Refusal(401, 'invalid token signature');
  }
}

export interface TokenContext {
  provisioners: Provisioner[];
  dnsNames: string[];
  startedAt: number;
  now: number;
  /** Marks a token id used; returns false when it already was (step-ca's `db.UseToken`). */
  useToken(id: string): boolean;
}

/**
 * A one-time token of a JWK provisioner (`authority.authorizeToken`, then `JWK.authorizeToken`),
 * in step-ca's order. Returns the verified claims and the provisioner.
 */
export async function authorizeToken(
  token: unknown,
  endpoint: 'sign' | 'revoke',
  ctx: TokenContext,
): Promise<{ claims: Record<string, unknown>; provisioner: Provisioner }> {
  // Rule: the token must parse as a JWS with a JSON header and claims.
  const { header, claims } = parseJws(token);
  // Rule: tokens issued before the CA started are refused (step-ca's stand-in for persistence
  // of used tokens across restarts; `disableIssuedAtCheck` turns it off in real step-ca).
  if (typeof claims.iat === 'number' && claims.iat * 1000 < ctx.startedAt)
    throw new Refusal(401, 'token issued before the bootstrap of certificate authority');
  // Rule: provisioner looked up by (iss, kid), and the audience must name one of the CA's DNS
  // names; both failures share one message.
  const provisioner = ctx.provisioners.find((p) => p.name === claims.iss && p.kid === header.kid);
  if (!provisioner || !audienceMatches(claims, ctx.dnsNames, endpoint))
    throw new Refusal(401, 'provisioner not found or invalid audience');
  // Rule: jti replay, checked (and the jti burned) BEFORE the signature: a forged token with a
  // real jti burns that jti. Tokens without jti are keyed by their hash.
  const id = typeof claims.jti === 'string' && claims.jti ? claims.jti : `sha:${String(token)}`;
  if (!ctx.useToken(id)) throw new Refusal(401, 'token already used');
  // Rule: the signature verifies with the provisioner's key, for its algorithm only.
  await verifySignature(token as string, provisioner.publicJwk, String(provisioner.publicJwk.alg));
  // Rule: nbf/exp/iat with one minute of leeway.
  checkTimes(claims, ctx.now);
  // Rule: the subject must not be empty.
  if (typeof claims.sub !== 'string' || claims.sub === '')
    throw new Refusal(401, 'token subject cannot be empty');
  return { claims, provisioner };
}

/**
 * Revocation rules (`RevokeRequest.Validate` and the revoke handler): serial required (decimal,
 * or hex with 0x), reasonCode 0..10, passive only (501 otherwise); authenticated by a token
 * (audience `/1.0/revoke`, `sub` = the serial) or by the certificate itself over mTLS (its serial
 * must be the body's). Returns the serial in decimal, as step-ca keys revocations.
 */
export async function authorizeRevoke(
  body: Record<string, unknown>,
  peer: X509Certificate | undefined,
  ctx: TokenContext,
): Promise<{ serial: string; reasonCode: number }> {
  if (typeof body.serial !== 'string' || body.serial === '') throw new Refusal(400, 'missing serial');
  let serial: string;
  try {
    serial = BigInt(body.serial).toString(10);
  } catch {
    throw new Refusal(400, `'${body.serial}' is not a valid serial number`);
  }
  const reasonCode = typeof body.reasonCode === 'number' ? body.reasonCode : 0;
  if (reasonCode < 0 || reasonCode > 10) throw new Refusal(400, 'reasonCode out of bounds');
  if (body.passive !== true) throw new Refusal(501, 'non-passive revocation not implemented');
  if (typeof body.ott === 'string' && body.ott !== '') {
    const { claims } = await authorizeToken(body.ott, 'revoke', ctx);
    if (String(claims.sub) !== serial)
      throw new Refusal(401, 'token subject is not the serial being revoked');
  } else {
    if (!peer) throw new Refusal(400, 'missing ott or client certificate');
    if (BigInt(`0x${peer.serialNumber}`).toString(10) !== serial)
      throw new Refusal(400, 'serial number in client certificate different than body');
  }
  return { serial, reasonCode };
}

export interface RenewTokenContext extends TokenContext {
  intermediate: X509Certificate;
}

/**
 * The Bearer token of `/1.0/renew` for expired certificates (`AuthorizeRenewToken`): the chain
 * in `x5cInsecure` must verify to this CA with time ignored, the token be signed by the leaf's
 * key, unused, `sub` = the leaf's CN, times with leeway, `aud` = the renew endpoint, `iss`
 * `step-ca-client/1.0` (or the provisioner name, from older clients).
 */
export async function authorizeRenewToken(token: string, ctx: RenewTokenContext): Promise<X509Certificate> {
  const { header, claims } = parseJws(token);
  const x5c = header.x5cInsecure;
  if (!Array.isArray(x5c) || x5c.length === 0 || !x5c.every((c) => typeof c === 'string'))
    throw new Refusal(401, 'error validating renew token: missing x5cInsecure');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(Buffer.from(x5c[0] as string, 'base64'));
  } catch {
    throw new Refusal(401, 'error validating renew token: bad x5cInsecure certificate');
  }
  if (!leaf.checkIssued(ctx.intermediate) || !leaf.verify(ctx.intermediate.publicKey))
    throw new Refusal(401, 'error validating renew token: certificate not issued by this CA');
  const alg = typeof header.alg === 'string' ? header.alg : '';
  await verifySignature(token, leaf, alg);
  if (!ctx.useToken(typeof claims.jti === 'string' && claims.jti ? claims.jti : `sha:${token}`))
    throw new Refusal(401, 'token already used');
  const cn = new x509.X509Certificate(leaf.raw).subjectName.getField('CN')[0] ?? '';
  if (claims.sub !== cn) throw new Refusal(401, 'error validating renew token: invalid subject claim (sub)');
  checkTimes(claims, ctx.now);
  if (!audienceMatches(claims, ctx.dnsNames, 'renew'))
    throw new Refusal(401, 'error validating renew token: invalid audience claim (aud)');
  if (claims.iss !== 'step-ca-client/1.0' && !ctx.provisioners.some((p) => p.name === claims.iss))
    throw new Refusal(401, 'error validating renew token: invalid issuer claim (iss)');
  return leaf;
}

/**
 * CSR-versus-token rules (JWK provisioner sign options): the CSR's CN must be empty, `sub`, or
 * one of the token's SANs; for each SAN type present in the CSR, its set must equal the token's
 * set of that type (compared as strings for DNS, as addresses for IPs). Violations are 403.
 */
export function checkCsrAgainstToken(
  csr: x509.Pkcs10CertificateRequest,
  claims: Record<string, unknown>,
): void {
  const sub = String(claims.sub);
  const sans = Array.isArray(claims.sans) && claims.sans.length > 0 ? (claims.sans as string[]) : [sub];
  const cn = csr.subjectName.getField('CN')[0] ?? '';
  if (cn !== '' && cn !== sub && !sans.includes(cn))
    throw new Refusal(
      403,
      `certificate request does not contain the valid common name - got ${cn}, want ${sub}`,
    );
  const ext = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
    | x509.SubjectAlternativeNameExtension
    | undefined;
  const items = ext?.names.items ?? [];
  const csrDns = new Set(items.filter((i) => i.type === 'dns').map((i) => i.value));
  const csrIps = new Set(items.filter((i) => i.type === 'ip').map((i) => canonicalIp(i.value) ?? i.value));
  const tokenIps = new Set(sans.map((s) => canonicalIp(s)).filter((s): s is string => s !== null));
  const tokenDns = new Set(sans.filter((s) => canonicalIp(s) === null));
  const same = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((v) => b.has(v));
  if (csrDns.size > 0 && !same(csrDns, tokenDns))
    throw new Refusal(
      403,
      `certificate request does not contain the valid DNS names - got [${[...csrDns]}], want [${[...tokenDns]}]`,
    );
  if (csrIps.size > 0 && !same(csrIps, tokenIps))
    throw new Refusal(
      403,
      `certificate request does not contain the valid IP addresses - got [${[...csrIps]}], want [${[...tokenIps]}]`,
    );
}

/** Parses step-ca's TimeDuration: RFC 3339, or a Go duration (`90s`, `5m`, `1h30m`) relative to `base`. */
export function parseTimeDuration(value: unknown, base: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Refusal(400, 'invalid time duration');
  const absolute = Date.parse(value);
  if (/^\d{4}-\d\d-\d\dT/.test(value) && !Number.isNaN(absolute)) return absolute;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value.replace(/^[-+]/, ''))
    throw new Refusal(400, `invalid time duration ${value}`);
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
  return base + (value.startsWith('-') ? -ms : ms);
}

export interface DurationPolicy {
  defaultMs: number;
  minMs: number;
  maxMs: number;
  backdateMs: number;
}

/**
 * Validity of a new leaf (`profileDefaultDuration` + `validityValidator`): without a requested
 * notBefore the certificate is backdated; notAfter defaults to the provisioner's default
 * duration; the duration must be at least the minimum and at most the maximum plus the
 * backdate; notAfter cannot be in the past. Violations are 403.
 */
export function validity(
  body: { notBefore?: unknown; notAfter?: unknown },
  now: number,
  policy: DurationPolicy,
): { notBefore: number; notAfter: number } {
  const requestedNbf = parseTimeDuration(body.notBefore, now);
  const nbf = requestedNbf ?? now;
  const notBefore = requestedNbf ?? now - policy.backdateMs;
  const notAfter = parseTimeDuration(body.notAfter, nbf) ?? nbf + policy.defaultMs;
  const na = Math.floor(notAfter / 1000);
  const nb = Math.floor(notBefore / 1000);
  if (na < Math.floor(now / 1000)) throw new Refusal(403, 'notAfter cannot be in the past');
  if (na < nb) throw new Refusal(403, 'notAfter cannot be before notBefore');
  const d = (na - nb) * 1000;
  if (d < policy.minMs)
    throw new Refusal(
      403,
      `requested duration of ${d / 1000}s is less than the authorized minimum certificate duration`,
    );
  if (d > policy.maxMs + policy.backdateMs)
    throw new Refusal(
      403,
      `requested duration of ${d / 1000}s is more than the authorized maximum certificate duration`,
    );
  return { notBefore, notAfter };
}
