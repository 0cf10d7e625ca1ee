/**
 * Looking for a challenge answer the way a CA does (RFC 8555 §8.3, §8.4; RFC 8737; RFC 8738):
 * an HTTP GET of the well-known path, a TLS connection offering only `acme-tls/1`, a TXT query.
 * Each look says whether the CA would accept what it found, why not, and what it found at all
 * (`residue`: what must be gone once the solver cleaned up).
 */
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import tls from 'node:tls';
import type { ChallengeTask } from '../challenges/solver.js';
import { alpnServerName } from '../challenges/tls-alpn-01/solver.js';
import { canonicalIp } from '../crypto/names.js';
import { x509 } from '../crypto/x509.js';

/** Where the CA looks for the answers of the solver under test. */
export type ChallengeReach =
  /** HTTP-01: the listener the CA's GET reaches (sent with `Host: <identifier>`). */
  | { http: { host: string; port: number } }
  /** TLS-ALPN-01: the TLS listener the CA connects to (SNI: the identifier, ALPN: acme-tls/1). */
  | { tls: { host: string; port: number } }
  /** DNS-01: the DNS servers (`host` or `host:port`) the CA queries. */
  | { dns: { servers: string[] } }
  /** Anything else: whether the CA would find the answer of `task` now. */
  | { custom(task: ChallengeTask): Promise<boolean> };

/** What the conformance kit found where the CA would look. */
export interface Sighting {
  /** The CA would accept what it found. */
  answered: boolean;
  /** What it found, in words (for failure messages). */
  why: string;
  /** Anything found at all for this challenge: empty once the answer is gone. */
  residue: string[];
}

const ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';
const LOOK_TIMEOUT_MS = 5_000;

function digest(keyAuthorization: string): Buffer {
  return createHash('sha256').update(keyAuthorization).digest();
}

/** Looks for the answer of `task` at `reach`. */
export async function look(reach: ChallengeReach, task: ChallengeTask): Promise<Sighting> {
  if ('http' in reach) return lookHttp(reach.http, task);
  if ('tls' in reach) return lookTls(reach.tls, task);
  if ('dns' in reach) return lookDns(reach.dns.servers, task);
  const answered = await reach.custom(task);
  return { answered, why: answered ? 'answered' : 'not answered', residue: answered ? ['answer'] : [] };
}

function lookHttp(at: { host: string; port: number }, task: ChallengeTask): Promise<Sighting> {
  const host = task.identifier.value.includes(':') ? `[${task.identifier.value}]` : task.identifier.value;
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: at.host,
        port: at.port,
        path: `/.well-known/acme-challenge/${task.token}`,
        headers: { Host: host },
        agent: false,
        timeout: LOOK_TIMEOUT_MS,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 8192) body += chunk;
        });
        res.on('end', () => {
          // A CA trims surrounding whitespace (RFC 8555 §8.3 allows it).
          const ok = res.statusCode === 200 && body.trim() === task.keyAuthorization;
          resolve({
            answered: ok,
            why: `HTTP ${res.statusCode}${ok ? '' : `, body ${JSON.stringify(body.slice(0, 80))}`}`,
            residue: res.statusCode === 200 ? [body] : [],
          });
        });
        res.on('error', (error) => resolve({ answered: false, why: error.message, residue: [] }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve({ answered: false, why: error.message, residue: [] }));
  });
}

function lookTls(at: { host: string; port: number }, task: ChallengeTask): Promise<Sighting> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: at.host,
      port: at.port,
      servername: alpnServerName(task.identifier),
      ALPNProtocols: ['acme-tls/1'],
      // The challenge certificate is self-signed by design: the CA checks its contents instead.
      rejectUnauthorized: false,
    });
    const done = (sighting: Sighting) => {
      socket.destroy();
      resolve(sighting);
    };
    socket.setTimeout(LOOK_TIMEOUT_MS, () => done({ answered: false, why: 'timed out', residue: [] }));
    socket.once('error', (error) => done({ answered: false, why: error.message, residue: [] }));
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'acme-tls/1') {
        return done({
          answered: false,
          why: `ALPN ${socket.alpnProtocol || 'none'} negotiated`,
          residue: [],
        });
      }
      const peer = socket.getPeerX509Certificate();
      const problem = peer ? challengeCertificateProblem(peer.raw, task) : 'no certificate';
      done({
        answered: problem === null,
        why: problem ?? 'answered',
        residue: ['a certificate over acme-tls/1'],
      });
    });
  });
}

/** Why `der` is not the RFC 8737 answer to `task`, or null. */
function challengeCertificateProblem(der: Buffer, task: ChallengeTask): string | null {
  const cert = new x509.X509Certificate(der);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const items = san?.names.items ?? [];
  const wanted = task.identifier;
  const only = items.length === 1 ? items[0]! : undefined;
  const same =
    only?.type === wanted.type &&
    (wanted.type === 'ip' ? canonicalIp(only.value) === wanted.value : only.value === wanted.value);
  if (!same)
    return `names [${items.map((i) => `${i.type}:${i.value}`).join(', ')}], not only ${wanted.value}`;
  const extension = cert.getExtension(ACME_IDENTIFIER);
  if (!extension) return 'no acmeIdentifier extension';
  if (!extension.critical) return 'the acmeIdentifier extension is not critical';
  const expected = Buffer.concat([Buffer.from([0x04, 0x20]), digest(task.keyAuthorization)]);
  if (!Buffer.from(extension.value).equals(expected)) return 'the acmeIdentifier holds another digest';
  return null;
}

async function lookDns(servers: string[], task: ChallengeTask): Promise<Sighting> {
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  resolver.setServers(servers);
  const fqdn = `_acme-challenge.${task.identifier.value}`;
  const wanted = digest(task.keyAuthorization).toString('base64url');
  let values: string[];
  try {
    values = (await resolver.resolveTxt(fqdn)).map((chunks) => chunks.join(''));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENODATA' || code === 'ENOTFOUND') return { answered: false, why: code, residue: [] };
    return {
      answered: false,
      why: `query failed: ${code ?? (error as Error).message}`,
      residue: [code ?? 'error'],
    };
  }
  const answered = values.includes(wanted);
  return { answered, why: `TXT ${fqdn}: [${values.join(', ')}]`, residue: values };
}
