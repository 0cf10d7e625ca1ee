/**
 * Names a certificate is for: DNS names, wildcards and IP addresses, normalised one way everywhere
 * (lower case, no trailing dot, IDNs as A-labels, IPv6 in canonical form), and matched per
 * RFC 6125 §6.4.3: a wildcard is exactly the whole left-most label and stands for exactly one
 * label. `*.a.com` covers `x.a.com`, never `a.com` and never `x.y.a.com`.
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { CertkeeperError } from '../errors.js';

export type NameType = 'dns' | 'ip';

export interface Identifier {
  type: NameType;
  /** Normalised value. */
  value: string;
  wildcard: boolean;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function invalidName(name: string, reason: string): CertkeeperError {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  return new CertkeeperError('INVALID_NAME', `invalid name ${shown}: ${reason}`, { details: { reason } });
}

/** Canonical text of an IP address (IPv6 compressed, lower case), or null when not an IP. */
export function canonicalIp(value: string): string | null {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  const family = isIP(bare);
  if (family === 4) return bare.split('.').map(Number).join('.');
  if (family === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return null;
}

/** Parses and normalises one requested name; throws `INVALID_NAME`. */
export function parseName(input: string): Identifier {
  if (typeof input !== 'string') throw invalidName(String(input), 'not a string');
  const trimmed = input.trim();
  if (trimmed.length === 0) throw invalidName(input, 'empty');
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

/**
 * Whether a certificate whose SANs are `sans` covers the requested `name`. A requested wildcard
 * is covered only by the identical wildcard SAN; an IP only by an IP SAN.
 */
export function nameCovered(name: Identifier, sans: readonly Identifier[]): boolean {
  for (const san of sans) {
    if (san.type !== name.type) continue;
    if (san.value === name.value) return true;
    if (name.type === 'dns' && san.wildcard && !name.wildcard) {
      const suffix = san.value.slice(1); // ".a.com"
      const first = name.value.slice(0, name.value.length - suffix.length);
      if (name.value.endsWith(suffix) && first.length > 0 && !first.includes('.')) return true;
    }
  }
  return false;
}

/** Whether `host` (as sent in SNI) is served by a certificate for `pattern` (possibly a wildcard). */
export function hostMatches(pattern: string, host: string): boolean {
  try {
    return nameCovered(parseName(host), [parseName(pattern)]);
  } catch {
    return false;
  }
}
