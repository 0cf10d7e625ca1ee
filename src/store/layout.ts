/**
 * The one place that builds store keys. Nothing else in certkeeper concatenates key strings, so
 * the layout can be read (and audited for traversal) here:
 *
 *   certificates/<issuer>/<name>/current.json      pointer to the served generation + its facts
 *   certificates/<issuer>/<name>/<serial>/cert.pem leaf + chain of one generation, PEM
 *   certificates/<issuer>/<name>/<serial>/key.pem  its PKCS#8 private key (sensitive)
 *
 * Generations are immutable directories named by serial; `current.json` is the single atomic
 * commit point (written last), and names the previous generation, which is kept for rollback.
 *   accounts/<issuer>/<account>/account.json     ACME account URL and contact
 *   accounts/<issuer>/<account>/key.pem          account private key (sensitive)
 *   challenges/<type>/<token or name>              pending challenge answers, shared by replicas
 *   ca/<ca-name>/...                             the embedded CA's root and intermediate
 *   locks/<name>                                 lock records (stores may keep them elsewhere)
 *   cluster/members/<replica>                    replica heartbeats (stores with watch())
 *   challenges/tls-alpn-01-acks/<name>/<replica> "this replica holds that challenge in memory"
 *
 * Every dynamic part goes through `segment()`, which refuses hostile input instead of rewriting
 * it: a name with `..`, a slash, NUL or a control character is a bug or an attack, and silently
 * mapping it to something else could alias two certificates.
 */
import { CertkeeperError } from '../errors.js';

export const MAX_SEGMENT_LENGTH = 200;
export const MAX_KEY_LENGTH = 1024;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function invalid(reason: string, value: string): CertkeeperError {
  // The offending value is shown JSON-escaped and cut short so a hostile name cannot forge log lines.
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return new CertkeeperError('INVALID_STORE_KEY', `invalid store key ${shown}: ${reason}`, {
    details: { reason },
  });
}

/** Validates one path segment and returns it unchanged. */
export function segment(value: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid('empty segment', String(value));
  if (value.length > MAX_SEGMENT_LENGTH) throw invalid(`segment longer than ${MAX_SEGMENT_LENGTH}`, value);
  if (CONTROL.test(value)) throw invalid('NUL or control character', value);
  if (value === '.' || value === '..') throw invalid('relative segment', value);
  if (value.includes('/') || value.includes('\\')) throw invalid('path separator in segment', value);
  return value;
}

/**
 * Checks a full key against the contract in `store.ts`. Stores call this on every operation, so
 * a key built elsewhere cannot escape a FileStore's directory.
 */
export function assertStoreKey(key: string, { allowEmpty = false } = {}): string {
  if (typeof key !== 'string') throw invalid('not a string', String(key));
  if (key === '' && allowEmpty) return key;
  if (key.length > MAX_KEY_LENGTH) throw invalid(`key longer than ${MAX_KEY_LENGTH}`, key);
  if (key.startsWith('/')) throw invalid('absolute path', key);
  if (/^[A-Za-z]:/.test(key)) throw invalid('drive-letter path', key);
  for (const part of key.split('/')) segment(part);
  return key;
}

/** Joins validated segments. */
export function joinKey(...parts: string[]): string {
  return assertStoreKey(parts.map(segment).join('/'));
}

/** Whether `key` lies at or below `prefix`, segment-wise (the `list` rule of the contract). */
export function keyHasPrefix(key: string, prefix: string): boolean {
  if (prefix === '') return true;
  return key === prefix || key.startsWith(`${prefix}/`);
}

/**
 * A certificate's directory name: its first name, lower-cased, with a wildcard's `*` spelled
 * `_wildcard_` so the name stays a plain file name on every file system.
 */
export function certificateName(primaryName: string): string {
  const lowered = primaryName.trim().toLowerCase().replace(/\.$/, '');
  if (lowered.includes(':')) {
    // IPv6 literals contain ':' which some file systems reject.
    return segment(lowered.replaceAll(':', '_'));
  }
  return segment(lowered.replace(/^\*\./, '_wildcard_.'));
}

/**
 * A store-safe identity for an issuer. URLs become `host[_port]-path` the way certmagic does, so
 * the staging and production directories of one CA never share accounts or certificates.
 */
export function issuerKey(identity: string): string {
  let value = identity.trim();
  try {
    const url = new URL(value);
    const path = url.pathname.replace(/^\/+|\/+$/g, '').replace(/\//g, '-');
    value = `${url.hostname}${url.port ? `_${url.port}` : ''}${path ? `-${path}` : ''}`;
  } catch {
    // not a URL: an issuer name such as "internal"
  }
  value = value.toLowerCase().replace(/[^a-z0-9._-]/g, '_');
  return segment(value);
}

export interface CertificateKeys {
  dir: string;
  /** The pointer to the served generation. */
  current: string;
  generation(serial: string): { dir: string; cert: string; key: string };
}

export const layout = {
  certificate(issuer: string, name: string): CertificateKeys {
    const dir = joinKey('certificates', issuerKey(issuer), certificateName(name));
    return {
      dir,
      current: `${dir}/current.json`,
      generation(serial: string) {
        const gen = `${dir}/${segment(serial.toLowerCase())}`;
        return { dir: gen, cert: `${gen}/cert.pem`, key: `${gen}/key.pem` };
      },
    };
  },
  certificatesOf(issuer: string): string {
    return joinKey('certificates', issuerKey(issuer));
  },
  account(issuer: string, account: string): { dir: string; record: string; key: string } {
    const dir = joinKey('accounts', issuerKey(issuer), segment(account));
    return { dir, record: `${dir}/account.json`, key: `${dir}/key.pem` };
  },
  /** A challenge answer, e.g. `challenges/http-01/<token>`; any replica sharing the store can serve it. */
  challenge(type: string, id: string): string {
    return joinKey('challenges', type, id);
  },
  ca(name: string, file: string): string {
    return joinKey('ca', segment(name), file);
  },
  /** The directory of an internal CA's files (for `list`). */
  caDir(name: string): string {
    return joinKey('ca', segment(name));
  },
  lock(name: string): string {
    return joinKey('locks', name);
  },
  /** A replica's heartbeat record (replicas sharing a store). */
  member(replicaId: string): string {
    return joinKey('cluster', 'members', replicaId);
  },
  /** A replica's acknowledgement that it holds a TLS-ALPN-01 challenge certificate in memory. */
  alpnAck(servername: string, replicaId: string): string {
    return joinKey('challenges', 'tls-alpn-01-acks', servername, replicaId);
  },
  /** Whether a key holds a private key (stores that encrypt at rest use this). */
  isSensitive(key: string): boolean {
    return key.endsWith('key.pem') || key.endsWith('.key');
  },
} as const;
