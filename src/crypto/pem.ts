/**
 * Strict PEM handling (RFC 7468). Explanatory text between blocks is allowed, as OpenSSL allows
 * it; anything wrong inside a block (mismatched labels, bad base64, a missing END line) is
 * `MALFORMED_PEM`. Error messages name block labels and positions, never block contents.
 */
import { CertkeeperError } from '../errors.js';
import { describeValue, isBytes, textOf } from './guards.js';

/** One PEM block: its label and its DER bytes. */
export interface PemBlock {
  label: string;
  der: Buffer;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

function malformed(message: string, what: string): CertkeeperError {
  return new CertkeeperError('MALFORMED_PEM', `${what}: ${message}`);
}

/** Splits PEM text into its blocks. `what` names the input in messages ("certificate chain"). */
export function parsePem(text: string | Uint8Array, what = 'PEM input'): PemBlock[] {
  const source = textOf(text, what);
  const lines = source.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  let label: string | null = null;
  let body: string[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (label === null) {
      const begin = BEGIN.exec(line);
      if (begin) {
        label = begin[1]!;
        body = [];
      } else if (line.startsWith('-----')) {
        throw malformed('unexpected boundary line outside a block', what);
      }
      continue;
    }
    const end = END.exec(line);
    if (end) {
      if (end[1] !== label) throw malformed(`block "${label}" ends with "${end[1]}"`, what);
      blocks.push({ label, der: decodeBase64(body.join(''), label, what) });
      label = null;
      continue;
    }
    if (line.startsWith('-----')) throw malformed(`block "${label}" is not terminated`, what);
    // RFC 1421 encapsulated headers (Proc-Type, DEK-Info) mark legacy encrypted keys.
    if (line.includes(':')) throw malformed(`block "${label}" has headers (legacy encrypted PEM)`, what);
    if (!BASE64_LINE.test(line)) throw malformed(`block "${label}" contains characters outside base64`, what);
    body.push(line);
  }
  if (label !== null) throw malformed(`block "${label}" is not terminated`, what);
  return blocks;
}

function decodeBase64(data: string, label: string, what: string): Buffer {
  const padded = data.replace(/=+$/, '');
  if (data.length === 0) throw malformed(`block "${label}" is empty`, what);
  if (padded.includes('=') || padded.length % 4 === 1)
    throw malformed(`block "${label}" has bad base64`, what);
  const der = Buffer.from(data, 'base64');
  // Node's decoder is lenient; re-encoding catches truncated or padded-in-the-middle input.
  if (der.toString('base64').replace(/=+$/, '') !== padded) {
    throw malformed(`block "${label}" has bad base64`, what);
  }
  return der;
}

export function toPem(label: string, der: Uint8Array): string {
  if (typeof label !== 'string' || !/^[A-Z0-9]+( [A-Z0-9]+)*$/.test(label) || label.length > 64) {
    throw malformed(`${describeValue(label)} is not a PEM label`, 'PEM output');
  }
  if (!isBytes(der)) throw malformed(`expected bytes, got ${describeValue(der)}`, 'PEM output');
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** All CERTIFICATE blocks, in order. Throws when there are none or when other blocks are mixed in. */
export function parseCertificatePems(text: string | Uint8Array, what = 'certificate chain'): Buffer[] {
  const blocks = parsePem(text, what);
  if (blocks.length === 0) throw malformed('no PEM block found', what);
  const others = blocks.filter((b) => b.label !== 'CERTIFICATE');
  if (others.length > 0) {
    const labels = [...new Set(others.map((b) => b.label))].join(', ');
    throw malformed(`expected only CERTIFICATE blocks, found ${labels}`, what);
  }
  return blocks.map((b) => b.der);
}
