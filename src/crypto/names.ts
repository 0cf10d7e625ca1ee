/**
 * Names a certificate is for: DNS names, wildcards and IP addresses, normalised one way everywhere
 * (lower case, no trailing dot, IDNs as A-labels, IPv6 in canonical form), and matched the way TLS
 * clients match them (RFC 6125 §6.4.3, narrowed to what Node's `checkServerIdentity` and OpenSSL's
 * `X509_check_host` both accept): a wildcard is exactly the whole left-most label and stands for
 * exactly one label. `*.a.com` covers `x.a.com`, never `a.com` and never `x.y.a.com`.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { CertkeeperError } from '../errors.js';
import { describeValue } from './guards.js';

/** The kind of a certificate name. */
export type NameType = 'dns' | 'ip';

/** A certificate name, parsed and normalised (lower case DNS name without trailing dot, canonical IP). */
export interface Identifier {
  type: NameType;
  /** Normalised value. */
  value: string;
  wildcard: boolean;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
/** A label OpenSSL accepts around a wildcard: letters, digits, inner hyphens (no underscore). */
const WILDCARD_BASE_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** Longer raw input is refused before any parsing work: no name or address is this long. */
const MAX_INPUT = 255;

function invalidName(name: unknown, reason: string): CertkeeperError {
  const shown =
    typeof name === 'string' ? JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name) : '';
  const what = shown || describeValue(name);
  return new CertkeeperError('INVALID_NAME', `invalid name ${what}: ${reason}`, { details: { reason } });
}

/**
 * Canonical text of an IP address (IPv6 compressed, lower case), or null when not an IP. An
 * IPv6 address with a zone id (`fe80::1%eth0`) is `INVALID_NAME`: the zone means something on
 * one host only, and no certificate can carry it.
 */
export function canonicalIp(value: string): string | null {
  if (typeof value !== 'string') throw invalidName(value, 'not a string');
  if (value.length > MAX_INPUT) return null;
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  const family = isIP(bare);
  if (family === 0) return null;
  if (bare.includes('%'))
    throw invalidName(value, 'an IPv6 zone id is local to one host: no certificate names it');
  if (family === 4) return bare.split('.').map(Number).join('.');
  return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}

/** Parses and normalises one requested name; throws `INVALID_NAME`. */
export function parseName(input: string): Identifier {
  if (typeof input !== 'string') throw invalidName(input, 'not a string');
  const trimmed = input.trim();
  if (trimmed.length === 0) throw invalidName(input, 'empty');
  if (trimmed.length > MAX_INPUT) throw invalidName(input, 'longer than 253 characters');
  const ip = canonicalIp(trimmed);
  if (ip !== null) return { type: 'ip', value: ip, wildcard: false };

  let name = trimmed.toLowerCase().replace(/\.$/, '');
  const wildcard = name.startsWith('*.');
  const rest = wildcard ? name.slice(2) : name;
  if (rest.includes('*')) throw invalidName(input, 'a wildcard must be the whole left-most label');
  // U-labels become A-labels (punycode), so names compare the way TLS clients send them.
  const isAscii = [...rest].every((c) => c.charCodeAt(0) < 0x80);
  const ascii = isAscii ? rest : domainToASCII(rest);
  if (!ascii) throw invalidName(input, 'not a valid internationalised domain name');
  name = wildcard ? `*.${ascii}` : ascii;
  if (name.length > 253) throw invalidName(input, 'longer than 253 characters');
  const labels = ascii.split('.');
  for (const label of labels) {
    if (!LABEL.test(label)) throw invalidName(input, `bad label "${label.slice(0, 63)}"`);
  }
  if (wildcard && labels.length < 2)
    throw invalidName(input, 'a wildcard needs at least two labels after "*."');
  return { type: 'dns', value: name, wildcard };
}

/** Normalises, validates and de-duplicates a list of names, keeping order. */
export function parseNames(inputs: readonly string[]): Identifier[] {
  if (!Array.isArray(inputs)) throw invalidName(inputs, 'expected a list of names');
  const seen = new Set<string>();
  const out: Identifier[] = [];
  for (const input of inputs) {
    const id = parseName(input);
    const key = `${id.type}:${id.value}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(id);
    }
  }
  return out;
}

export function normalizeName(input: string): string {
  return parseName(input).value;
}

/** Lower-cases ASCII letters only: `toLowerCase` turns the Kelvin sign into `k`, clients do not. */
function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Whether a DNS subjectAltName exactly as written in a certificate (`san`) covers the normalised
 * DNS name `host`, for Node's `checkServerIdentity` and OpenSSL's `X509_check_host` alike:
 *
 * - an exact match, ASCII case-insensitive (OpenSSL compares bytes, so a SAN spelled with a
 *   trailing dot, in Unicode or with any other difference covers nothing; Node forgives the dot);
 * - `*.base` for one more label, when `base` has two labels or more of letters, digits and inner
 *   hyphens (OpenSSL takes an underscore in `base` literally), and the label the wildcard stands
 *   for has only letters, digits and hyphens (OpenSSL refuses an underscore there).
 *
 * Partial-label wildcards (`f*.a.com`) cover nothing: Node and OpenSSL accept them, browsers and
 * the CA/Browser Forum rules do not, and a certificate must work for every client.
 * A requested wildcard (`*.a.com`) is covered only by the identical SAN.
 */
export function dnsSanCovers(san: string, host: string): boolean {
  const pattern = asciiLower(san);
  if (pattern === host) return true;
  if (!pattern.startsWith('*.') || host.startsWith('*.')) return false;
  const base = pattern.slice(2);
  const labels = base.split('.');
  if (labels.length < 2 || !labels.every((l) => WILDCARD_BASE_LABEL.test(l))) return false;
  const dot = host.indexOf('.');
  if (dot <= 0 || host.slice(dot + 1) !== base) return false;
  return /^[a-z0-9-]+$/.test(host.slice(0, dot));
}

/**
 * Why a DNS SAN as written can never be matched by clients, or null when it can. For the typed
 * error that lists what a certificate's names are worth.
 */
export function dnsSanProblem(san: string): string | null {
  if (san.endsWith('.')) return 'ends with a dot';
  if (isIP(san) !== 0)
    return 'a DNS name spelled like an IP address (clients match IPs only against IP SANs)';
  if (san.includes('*') && !/^\*\.[^*]+$/.test(san))
    return 'a wildcard that is not the whole left-most label';
  let id: Identifier;
  try {
    id = parseName(san);
  } catch {
    return 'not a valid host name';
  }
  if (id.value !== asciiLower(san)) return 'not a valid host name';
  if (
    id.wildcard &&
    !id.value
      .slice(2)
      .split('.')
      .every((l) => WILDCARD_BASE_LABEL.test(l))
  )
    return 'a wildcard over labels clients do not expand';
  return null;
}

function isIdentifier(value: unknown): value is Identifier {
  const id = value as Identifier;
  return (
    typeof value === 'object' &&
    value !== null &&
    (id.type === 'dns' || id.type === 'ip') &&
    typeof id.value === 'string'
  );
}

/**
 * Whether a certificate whose SANs are `sans` (parsed names) covers the requested `name`. A
 * requested wildcard is covered only by the identical wildcard SAN; an IP only by an IP SAN.
 */
export function nameCovered(name: Identifier, sans: readonly Identifier[]): boolean {
  if (!isIdentifier(name)) throw invalidName(name, 'not a parsed name (see parseName)');
  if (!Array.isArray(sans) || !sans.every(isIdentifier))
    throw invalidName(sans, 'expected a list of parsed names (see parseNames)');
  return sans.some(
    (san) =>
      san.type === name.type &&
      (name.type === 'ip' ? san.value === name.value : dnsSanCovers(san.value, name.value)),
  );
}

/** Whether `host` (as sent in SNI) is served by a certificate for `pattern` (possibly a wildcard). */
export function hostMatches(pattern: string, host: string): boolean {
  try {
    return nameCovered(parseName(host), [parseName(pattern)]);
  } catch {
    return false;
  }
}
