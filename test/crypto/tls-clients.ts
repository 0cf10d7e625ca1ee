// Harness for the client-agreement tables: the same certificates run through `openssl verify`
// (with -verify_hostname / -verify_ip) and through a real Node TLS handshake (Node's chain
// verification, then tls.checkServerIdentity on the peer certificate), and through
// validateBundle. validateBundle must accept exactly the rows both clients accept; its first
// problem is pinned per row. Where the two clients disagree the row says who accepts, and
// validateBundle refuses (a certificate must work for every client). A row refused although both
// accept says why (`stricter`: browsers refuse it).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, expect, it } from 'vitest';
import { validateBundle } from '../../src/crypto/validate.js';
import { x509 } from '../../src/crypto/x509.js';
import type { ErrorCode } from '../../src/errors.js';
import { listen } from '../support/tls.js';
import { OID, type RawAuthority, type RawSpec, rawCertificate } from './raw-certificates.js';

export const KU = x509.KeyUsageFlags;
const DAY = 86_400_000;

export interface Path {
  leaf: RawAuthority;
  intermediates: RawAuthority[];
  anchors: RawAuthority[];
}

let shared: Promise<{ root: RawAuthority; int: RawAuthority }> | undefined;
/** One root → intermediate (pathLen 0) for the rows that only twist the leaf. */
export function sharedCa(): Promise<{ root: RawAuthority; int: RawAuthority }> {
  shared ??= (async () => {
    const root = await rawCertificate({ basic: { ca: true }, commonName: 'Agreement Root' });
    const int = await rawCertificate({
      issuer: root,
      basic: { ca: true, pathLength: 0 },
      commonName: 'Agreement CA',
    });
    return { root, int };
  })();
  return shared;
}

/** A leaf (serverAuth unless told) under the shared root → intermediate. */
export async function leaf(spec: RawSpec): Promise<Path> {
  const { root, int } = await sharedCa();
  return {
    leaf: await rawCertificate({ issuer: int, eku: [OID.serverAuth], ...spec }),
    intermediates: [int],
    anchors: [root],
  };
}

/** root → intermediate → leaf (for a.test) with the given twists at each level. */
export async function chain(rootSpec: RawSpec, intSpec: RawSpec, leafSpec: RawSpec = {}): Promise<Path> {
  const r = await rawCertificate({ basic: { ca: true }, commonName: 'Row Root', ...rootSpec });
  const i = await rawCertificate({ issuer: r, basic: { ca: true }, commonName: 'Row CA', ...intSpec });
  const l = await rawCertificate({ issuer: i, san: ['a.test'], eku: [OID.serverAuth], ...leafSpec });
  return { leaf: l, intermediates: [i], anchors: [r] };
}

export const critical = (oid: string) => new x509.Extension(oid, true, Uint8Array.from([0x05, 0x00]));
export const past = { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) };
export const future = { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) };

export type Accepts = 'both' | 'node' | 'openssl' | 'neither';
export interface Row {
  title: string;
  /** The name a server row is asked for (and the clients check); client rows have none. */
  host?: string;
  purpose?: 'server' | 'client';
  build: () => Promise<Path>;
  /** Which of the two clients accept it (checked, so the table documents them). */
  accepts: Accepts;
  /** validateBundle's verdict: 'ok' or its first problem's code. */
  verdict: 'ok' | ErrorCode;
  /** Why validateBundle refuses a row both clients accept. */
  stricter?: string;
}

const dir = mkdtempSync(join(tmpdir(), 'ck-agree-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** `openssl verify` of the leaf with the row's intermediates and anchors, for its purpose and host. */
function opensslAccepts(p: Path, purpose: 'server' | 'client', host?: string): Promise<boolean> {
  const d = join(dir, String(n++));
  mkdirSync(d);
  writeFileSync(join(d, 'leaf.pem'), p.leaf.pem);
  writeFileSync(join(d, 'anchors.pem'), p.anchors.map((a) => a.pem).join(''));
  writeFileSync(join(d, 'untrusted.pem'), p.intermediates.map((a) => a.pem).join(''));
  const args = [
    'verify',
    '-purpose',
    purpose === 'server' ? 'sslserver' : 'sslclient',
    '-CAfile',
    join(d, 'anchors.pem'),
  ];
  if (p.intermediates.length > 0) args.push('-untrusted', join(d, 'untrusted.pem'));
  if (host) args.push(isIP(host) ? '-verify_ip' : '-verify_hostname', host);
  args.push(join(d, 'leaf.pem'));
  return new Promise((resolve) => execFile('openssl', args, { timeout: 10_000 }, (error) => resolve(!error)));
}

export const chainPem = (p: Path) => p.leaf.pem + p.intermediates.map((a) => a.pem).join('');

/** A real handshake: Node's client verifies the server's chain, then checkServerIdentity(host). */
async function nodeClientAccepts(p: Path, host: string): Promise<boolean> {
  const server = tls.createServer({ key: p.leaf.key.toPem(), cert: chainPem(p) });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  try {
    return await new Promise<boolean>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: p.anchors.map((a) => a.pem),
        checkServerIdentity: (_servername, cert) => tls.checkServerIdentity(host, cert),
      });
      socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
      socket.once('secureConnect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

/** A real handshake: a Node server requiring a client certificate verifies the row's chain. */
async function nodeServerAccepts(p: Path): Promise<boolean> {
  const { root } = await sharedCa(); // the server's own certificate: any will do
  const server = tls.createServer({
    key: root.key.toPem(),
    cert: root.pem,
    requestCert: true,
    rejectUnauthorized: false,
    ca: p.anchors.map((a) => a.pem),
  });
  const authorized = new Promise<boolean>((resolve) => {
    server.once('secureConnection', (socket) => {
      resolve(socket.authorized);
      socket.end();
    });
    server.on('tlsClientError', () => resolve(false));
  });
  const port = await listen(server);
  try {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      key: p.leaf.key.toPem(),
      cert: chainPem(p),
    });
    socket.on('error', () => {});
    const result = await authorized;
    socket.destroy();
    return result;
  } finally {
    server.close();
  }
}

function accepts(openssl: boolean, node: boolean): Accepts {
  return openssl && node ? 'both' : openssl ? 'openssl' : node ? 'node' : 'neither';
}

/** One test per row: both clients, then validateBundle, compared with the row. */
export function agreementTable(rows: Row[]): void {
  it.each(rows.map((r) => [r.title, r] as const))('%s', async (_title, row) => {
    const p = await row.build();
    const purpose = row.purpose ?? 'server';
    const [openssl, node] = await Promise.all([
      opensslAccepts(p, purpose, row.host),
      purpose === 'server' ? nodeClientAccepts(p, row.host!) : nodeServerAccepts(p),
    ]);
    const verdict = validateBundle({
      key: p.leaf.key,
      chain: chainPem(p),
      names: row.host ? [row.host] : [],
      purpose,
      trustAnchors: p.anchors.map((a) => a.pem),
    });
    const observed = { accepts: accepts(openssl, node), verdict: verdict.ok ? 'ok' : verdict.error.code };
    expect(observed).toEqual({ accepts: row.accepts, verdict: row.verdict });
    // The rule itself: accepted exactly when both clients accept, but for the documented rows.
    if (row.stricter) expect(row.accepts).toBe('both');
    else expect(verdict.ok).toBe(row.accepts === 'both');
  });
}
