/**
 * The DNS wire format (RFC 1035) as far as DNS-01 needs it: queries, dynamic updates (RFC 2136)
 * and their TSIG signatures (RFC 8945). Small on purpose: names, headers, resource records, TXT
 * strings, and HMAC signing and verification of whole messages.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TYPE = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28, TSIG: 250 } as const;
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
export const OPCODE = { QUERY: 0, UPDATE: 5 } as const;

const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
];
const TSIG_ERRORS: Record<number, string> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

export function rcodeName(rcode: number): string {
  return RCODES[rcode] ?? TSIG_ERRORS[rcode] ?? `RCODE${rcode}`;
}

export class WireError extends Error {}

/** A name without its trailing dot, lower case. */
export function canonicalName(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

export function encodeName(name: string): Buffer {
  const labels = canonicalName(name) === '' ? [] : name.replace(/\.$/, '').split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length === 0 || bytes.length > 63) throw new WireError(`invalid DNS name "${name}"`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > 255) throw new WireError(`DNS name too long: "${name}"`);
  return wire;
}

/** Reads a possibly compressed name at `offset`; `next` is the offset after it in place. */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let at = offset;
  let next = -1;
  for (let jumps = 0; ; ) {
    if (at >= buf.length) throw new WireError('name runs past the message');
    const length = buf[at]!;
    if (length === 0) {
      if (next < 0) next = at + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      if (at + 1 >= buf.length || ++jumps > 64) throw new WireError('bad name compression');
      if (next < 0) next = at + 2;
      at = ((length & 0x3f) << 8) | buf[at + 1]!;
      continue;
    }
    if (length > 63 || at + 1 + length > buf.length) throw new WireError('bad label');
    labels.push(buf.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  return { name: labels.join('.'), next };
}

/** TXT RDATA: the value split into character-strings of at most 255 bytes. */
export function txtData(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
    if (bytes.length === 0) break;
  }
  return Buffer.concat(parts);
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Buffer;
}

export interface Message {
  id: number;
  flags: number;
  questions: Question[];
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
}

/** A record read from a message: `at` is where its RDATA starts, for names compressed in it. */
export interface ReadRecord extends ResourceRecord {
  offset: number;
  at: number;
}

export interface ReadMessage extends Omit<Message, 'answers' | 'authority' | 'additional'> {
  answers: ReadRecord[];
  authority: ReadRecord[];
  additional: ReadRecord[];
  rcode: number;
  opcode: number;
  truncated: boolean;
  authoritative: boolean;
  response: boolean;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function encodeRecord(r: ResourceRecord): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(r.type, 0);
  fixed.writeUInt16BE(r.class, 2);
  fixed.writeUInt32BE(r.ttl, 4);
  fixed.writeUInt16BE(r.data.length, 8);
  return Buffer.concat([encodeName(r.name), fixed, r.data]);
}

export function encodeMessage(m: Message): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(m.id, 0);
  header.writeUInt16BE(m.flags, 2);
  header.writeUInt16BE(m.questions.length, 4);
  header.writeUInt16BE(m.answers.length, 6);
  header.writeUInt16BE(m.authority.length, 8);
  header.writeUInt16BE(m.additional.length, 10);
  const questions = m.questions.map((q) => Buffer.concat([encodeName(q.name), u16(q.type), u16(q.class)]));
  return Buffer.concat([
    header,
    ...questions,
    ...[...m.answers, ...m.authority, ...m.additional].map(encodeRecord),
  ]);
}

export function decodeMessage(buf: Buffer): ReadMessage {
  if (buf.length < 12) throw new WireError('message shorter than its header');
  const flags = buf.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((at) => buf.readUInt16BE(at));
  let at = 12;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]!; i++) {
    const { name, next } = readName(buf, at);
    if (next + 4 > buf.length) throw new WireError('question runs past the message');
    questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    at = next + 4;
  }
  const sections: ReadRecord[][] = [[], [], []];
  for (const [s, count] of counts.slice(1).entries()) {
    for (let i = 0; i < count; i++) {
      const offset = at;
      const { name, next } = readName(buf, at);
      if (next + 10 > buf.length) throw new WireError('record runs past the message');
      const length = buf.readUInt16BE(next + 8);
      const dataAt = next + 10;
      if (dataAt + length > buf.length) throw new WireError('record data runs past the message');
      sections[s]!.push({
        name,
        type: buf.readUInt16BE(next),
        class: buf.readUInt16BE(next + 2),
        ttl: buf.readUInt32BE(next + 4),
        data: buf.subarray(dataAt, dataAt + length),
        offset,
        at: dataAt,
      });
      at = dataAt + length;
    }
  }
  return {
    id: buf.readUInt16BE(0),
    flags,
    questions,
    answers: sections[0]!,
    authority: sections[1]!,
    additional: sections[2]!,
    rcode: flags & 0xf,
    opcode: (flags >> 11) & 0xf,
    truncated: (flags & 0x0200) !== 0,
    authoritative: (flags & 0x0400) !== 0,
    response: (flags & 0x8000) !== 0,
  };
}

/** The character-strings of a TXT record, joined (how a TXT value is compared). */
export function readTxt(r: ResourceRecord): string {
  const parts: Buffer[] = [];
  for (let i = 0; i < r.data.length; ) {
    const length = r.data[i]!;
    parts.push(r.data.subarray(i + 1, i + 1 + length));
    i += 1 + length;
  }
  return Buffer.concat(parts).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// TSIG (RFC 8945)

export const TSIG_ALGORITHMS = {
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
  'hmac-sha224': 'sha224',
  'hmac-sha1': 'sha1',
} as const;

export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** How far the signer's clock may be off (seconds), as BIND and Knot use by default. */
const FUDGE = 300;

function tsigVariables(
  key: TsigKey,
  timeSigned: number,
  fudge: number,
  error: number,
  other: Buffer,
): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt16BE(CLASS.ANY, 0);
  fixed.writeUInt32BE(0, 2);
  return Buffer.concat([
    encodeName(canonicalName(key.name)),
    fixed.subarray(0, 6),
    encodeName(`${key.algorithm}.`),
    time48(timeSigned),
    u16(fudge),
    u16(error),
    u16(other.length),
    other,
  ]);
}

function time48(seconds: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(seconds, 0, 6);
  return b;
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const mac = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Signs an encoded message: returns it with a TSIG record appended, and the MAC (for the answer). */
export function signMessage(message: Buffer, key: TsigKey, now = Date.now()): { wire: Buffer; mac: Buffer } {
  const timeSigned = Math.floor(now / 1000);
  const empty = Buffer.alloc(0);
  const mac = hmac(key, message, tsigVariables(key, timeSigned, FUDGE, 0, empty));
  const data = Buffer.concat([
    encodeName(`${key.algorithm}.`),
    time48(timeSigned),
    u16(FUDGE),
    u16(mac.length),
    mac,
    message.subarray(0, 2), // original ID
    u16(0),
    u16(0),
  ]);
  const wire = Buffer.concat([
    message,
    encodeRecord({ name: canonicalName(key.name), type: TYPE.TSIG, class: CLASS.ANY, ttl: 0, data }),
  ]);
  wire.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { wire, mac };
}

export interface TsigCheck {
  /** Whether the answer carries a TSIG record at all. */
  signed: boolean;
  /** Whether its MAC verifies with our key over the answer and our request's MAC. */
  valid: boolean;
  /** The TSIG error the server reported (BADSIG, BADKEY, BADTIME), 0 for none. */
  error: number;
  reason?: string;
}

/** Verifies the TSIG of an answer to a request signed with `requestMac` (RFC 8945 §5.3). */
export function verifyAnswer(
  answer: Buffer,
  decoded: ReadMessage,
  key: TsigKey,
  requestMac: Buffer,
  now = Date.now(),
): TsigCheck {
  const tsig = decoded.additional.at(-1);
  if (!tsig || tsig.type !== TYPE.TSIG)
    return { signed: false, valid: false, error: 0, reason: 'not signed' };
  let at = tsig.at;
  const algorithm = readName(answer, at);
  at = algorithm.next;
  const end = tsig.at + tsig.data.length;
  if (at + 10 > end) return { signed: true, valid: false, error: 0, reason: 'malformed TSIG' };
  const timeSigned = answer.readUIntBE(at, 6);
  const fudge = answer.readUInt16BE(at + 6);
  const macLength = answer.readUInt16BE(at + 8);
  const mac = answer.subarray(at + 10, at + 10 + macLength);
  at += 10 + macLength;
  if (at + 6 > end) return { signed: true, valid: false, error: 0, reason: 'malformed TSIG' };
  const originalId = answer.readUInt16BE(at);
  const error = answer.readUInt16BE(at + 2);
  const otherLength = answer.readUInt16BE(at + 4);
  const other = answer.subarray(at + 6, at + 6 + otherLength);
  if (canonicalName(tsig.name) !== canonicalName(key.name) || canonicalName(algorithm.name) !== key.algorithm)
    return { signed: true, valid: false, error, reason: 'signed with another key' };
  if (error !== 0 && macLength === 0)
    return { signed: true, valid: false, error, reason: 'server refused our signature' };
  // The answer as it was before the TSIG record was added: original ID, one additional record less.
  const unsigned = Buffer.from(answer.subarray(0, tsig.offset));
  unsigned.writeUInt16BE(originalId, 0);
  unsigned.writeUInt16BE(decoded.additional.length - 1, 10);
  const expected = hmac(
    key,
    u16(requestMac.length),
    requestMac,
    unsigned,
    tsigVariables(key, timeSigned, fudge, error, other),
  );
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected))
    return { signed: true, valid: false, error, reason: 'bad MAC' };
  if (Math.abs(Math.floor(now / 1000) - timeSigned) > fudge)
    return { signed: true, valid: false, error, reason: 'signed outside its time window' };
  return { signed: true, valid: error === 0, error };
}
