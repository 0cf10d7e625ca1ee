/**
 * X.509 name constraints (RFC 5280 §4.2.1.10) for the two name forms TLS serves: dNSName and
 * iPAddress, checked as OpenSSL's verifier checks them. A CA carrying them limits the names of
 * every certificate below it; a certificate outside them fails every Node and OpenSSL client.
 * Constraints on other forms (directory names, e-mail, URIs) are decoded but not enforced.
 *
 * The extension is decoded here with a small DER reader: @peculiar/x509 exposes no class for it.
 */
import { isIP } from 'node:net';
import { CertkeeperError } from '../errors.js';

export interface NameSubtree {
  type: 'dns' | 'ip' | 'other';
  /** dNSName text, or hex of address then mask (8 or 32 bytes) for iPAddress. */
  value: string;
  /** OpenSSL refuses any subtree with a maximum or a non-zero minimum (RFC 5280 forbids both). */
  minMaxValid: boolean;
}

export interface NameConstraints {
  permitted: NameSubtree[];
  excluded: NameSubtree[];
}

interface Tlv {
  tag: number;
  content: Uint8Array;
}

function malformed(): CertkeeperError {
  return new CertkeeperError('MALFORMED_PEM', 'nameConstraints extension does not decode');
}

/** The TLVs one after the other in `bytes` (definite lengths only, as DER has them). */
function readAll(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) throw malformed();
    const tag = bytes[at]!;
    let length = bytes[at + 1]!;
    at += 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > 3 || at + count > bytes.length) throw malformed();
      length = 0;
      for (let i = 0; i < count; i++) length = (length << 8) | bytes[at + i]!;
      at += count;
    }
    if (at + length > bytes.length) throw malformed();
    out.push({ tag, content: bytes.subarray(at, at + length) });
    at += length;
  }
  return out;
}

function subtree(tlv: Tlv): NameSubtree {
  if (tlv.tag !== 0x30) throw malformed();
  const [base, ...rest] = readAll(tlv.content);
  if (!base) throw malformed();
  // minimum [0] must be 0 when present; maximum [1] must be absent.
  const minMaxValid = rest.every((r) => r.tag === 0x80 && r.content.every((b) => b === 0));
  if (base.tag === 0x82)
    return { type: 'dns', value: Buffer.from(base.content).toString('latin1'), minMaxValid };
  if (base.tag === 0x87) return { type: 'ip', value: Buffer.from(base.content).toString('hex'), minMaxValid };
  return { type: 'other', value: `tag 0x${base.tag.toString(16)}`, minMaxValid };
}

/** Hex bytes of an IP SAN as CertificateInfo spells it (canonical text, or hex when no address). */
export function ipSanHex(text: string): string {
  if (isIP(text) === 4) return Buffer.from(text.split('.').map(Number)).toString('hex');
  if (isIP(text) !== 6) return text;
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** Decodes the DER value of a nameConstraints extension. */
export function decodeNameConstraints(der: Uint8Array): NameConstraints {
  const [outer, ...trailing] = readAll(der);
  if (outer?.tag !== 0x30 || trailing.length > 0) throw malformed();
  const result: NameConstraints = { permitted: [], excluded: [] };
  for (const part of readAll(outer.content)) {
    if (part.tag === 0xa0) result.permitted.push(...readAll(part.content).map(subtree));
    else if (part.tag === 0xa1) result.excluded.push(...readAll(part.content).map(subtree));
    else throw malformed();
  }
  Object.freeze(result.permitted);
  Object.freeze(result.excluded);
  return Object.freeze(result);
}

/** OpenSSL's nc_dns: the base matches itself and any name that adds labels on its left. */
function dnsWithin(name: string, base: string): boolean {
  if (base.length === 0) return true;
  const n = name.toLowerCase();
  const b = base.toLowerCase();
  if (n.length < b.length || !n.endsWith(b)) return false;
  return n.length === b.length || b.startsWith('.') || n[n.length - b.length - 1] === '.';
}

/** OpenSSL's nc_ip: the address under the mask; null when either side has a length that is no address. */
function ipWithin(addressHex: string, baseHex: string): boolean | null {
  const address = Buffer.from(addressHex, 'hex');
  const base = Buffer.from(baseHex, 'hex');
  if (![4, 16].includes(address.length) || ![8, 32].includes(base.length)) return null;
  if (address.length * 2 !== base.length) return false;
  for (let i = 0; i < address.length; i++) {
    const mask = base[address.length + i]!;
    if ((address[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

/**
 * Why `name` (a DNS name as written, or an IP as hex bytes) breaks `constraints`, or null. Only
 * subtrees of the name's own form apply: with any permitted one, the name must be within one.
 */
export function constraintViolation(
  name: { type: 'dns' | 'ip'; value: string },
  constraints: NameConstraints,
): string | null {
  const within = (s: NameSubtree): boolean | null =>
    name.type === 'dns' ? dnsWithin(name.value, s.value) : ipWithin(name.value, s.value);
  const permitted = constraints.permitted.filter((s) => s.type === name.type);
  const excluded = constraints.excluded.filter((s) => s.type === name.type);
  if ([...permitted, ...excluded].some((s) => !s.minMaxValid)) return 'a subtree has a minimum or maximum';
  let allowed = permitted.length === 0;
  for (const s of permitted) {
    const r = within(s);
    if (r === null) return 'an address of unsupported length';
    if (r) allowed = true;
  }
  if (!allowed) return 'outside the permitted subtrees';
  for (const s of excluded) {
    const r = within(s);
    if (r === null) return 'an address of unsupported length';
    if (r) return 'inside an excluded subtree';
  }
  return null;
}

/**
 * The DNS name OpenSSL reads from a common name when a certificate has no DNS SAN (cn2dnsid):
 * letters, digits, underscores, inner hyphens and dots, at least two labels. Else null.
 */
export function commonNameAsDns(cn: string | null): string | null {
  if (
    !cn ||
    !/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)+$/.test(cn)
  ) {
    return null;
  }
  return cn;
}
