/**
 * The one place that builds (and parses) store keys. Nothing else in certkeeper concatenates key
 * strings, so the layout can be read (and audited for traversal) here:
 *
 *   certificates/<issuer>/@<id>/current.json       pointer to the served generation + its facts
 *   certificates/<issuer>/@<id>/<serial>/cert.pem  leaf + chain of one generation, PEM
 *   certificates/<issuer>/@<id>/<serial>/key.pem   its PKCS#8 private key (sensitive)
 *
 * A certificate is stored under its id (`certificateSegment`), never under one of its names: two
 * ids that share a first name are two certificates. Generations are immutable directories named
 * by serial; `current.json` is the single atomic commit point (written last), and names the
 * previous generation, which is kept for rollback. Earlier versions stored a certificate under
 * its first name (`certificateName`, no `@`); `legacyCertificate` finds those directories.
 *   accounts/<issuer>/<account>/account.json     ACME account URL and contact
 *   accounts/<issuer>/<account>/key.pem          account private key (sensitive)
 *   challenges/http-01/<token>.key               an HTTP-01 answer (sealed like a private key)
 *   challenges/tls-alpn-01/<name>.key            a TLS-ALPN-01 challenge certificate and key (sealed)
 *   ca/<ca-name>/...                             the embedded CA's root and intermediate
 *   locks/<name>                                 lock records (stores may keep them elsewhere)
 *   issue/@<id>                                  (lock name) obtaining one certificate
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
 * The directory name certificates had before the id became their identity: the first name,
 * lower-cased, `*.` spelled `_wildcard_.` and `:` spelled `_`. Not injective (`*.a.example` and
 * `_wildcard_.a.example` meet, as do `::1` and `__1`): used only to find stores written by those
 * versions (`legacyCertificate`), never to write.
 */
export function certificateName(primaryName: string): string {
  const lowered = primaryName.trim().toLowerCase().replace(/\.$/, '');
  if (lowered.includes(':')) {
    // IPv6 literals contain ':' which some file systems reject.
    return segment(lowered.replaceAll(':', '_'));
  }
  return segment(lowered.replace(/^\*\./, '_wildcard_.'));
}

/** Marks an id-named certificate directory; no first name (`certificateName`) starts with it. */
const ID_MARK = '@';
// Bytes kept as they are: lower-case letters, digits, '-' and '.'. Everything else, upper-case
// letters included, is `%xx` in lower-case hex, so the result has no upper-case letter at all and
// two ids never differ only by case (case-insensitive file systems), and `%` itself is escaped.
const PLAIN = /^[a-z0-9.-]$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The directory name of the certificate with id `id`: `@` and the id's UTF-8 bytes, each kept
 * when it is `[a-z0-9.-]` and written `%xx` otherwise (a trailing `.` too, since Windows drops
 * it). Injective: `certificateIdOf` reverses it exactly. An id that cannot be mapped (not valid
 * Unicode, or too long once encoded) is refused with `INVALID_STORE_KEY`, never shortened.
 */
export function certificateSegment(id: string): string {
  if (typeof id !== 'string' || id.length === 0) throw invalid('empty certificate id', String(id));
  if (LONE_SURROGATE.test(id)) throw invalid('certificate id is not valid Unicode', id);
  let out = ID_MARK;
  const bytes = Buffer.from(id, 'utf8');
  bytes.forEach((byte, i) => {
    const char = String.fromCharCode(byte);
    const last = i === bytes.length - 1;
    out += PLAIN.test(char) && !(last && char === '.') ? char : `%${byte.toString(16).padStart(2, '0')}`;
  });
  if (out.length > MAX_SEGMENT_LENGTH)
    throw invalid(`certificate id longer than ${MAX_SEGMENT_LENGTH} characters once encoded`, id);
  return segment(out);
}

/** The id a directory name (`certificateSegment`) stands for, or null for anything else. */
export function certificateIdOf(name: string): string | null {
  if (!name.startsWith(ID_MARK) || !/^@(?:[a-z0-9.-]|%[0-9a-f]{2})+$/.test(name)) return null;
  const bytes: number[] = [];
  for (let i = 1; i < name.length; i++) {
    if (name[i] === '%') {
      bytes.push(Number.parseInt(name.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(name.charCodeAt(i));
  }
  let id: string;
  try {
    id = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
  // Only the one spelling certificateSegment produces (no needless escapes): one id, one directory.
  try {
    return certificateSegment(id) === name ? id : null;
  } catch {
    return null;
  }
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
  /** The serial of the generation directory `key` lies in, or null for any other key. */
  serialOf(key: string): string | null;
}

const SERIAL = /^[0-9a-f]{1,64}$/;

function certificateKeys(dir: string): CertificateKeys {
  return {
    dir,
    current: `${dir}/current.json`,
    generation(serial: string) {
      const gen = `${dir}/${segment(serial.toLowerCase())}`;
      return { dir: gen, cert: `${gen}/cert.pem`, key: `${gen}/key.pem` };
    },
    serialOf(key: string) {
      if (!keyHasPrefix(key, dir)) return null;
      const [serial, ...rest] = key.slice(dir.length + 1).split('/');
      return serial && rest.length > 0 && SERIAL.test(serial) ? serial : null;
    },
  };
}

/** What a key under `certificates/` names: see `layout.parseCertificate`. */
export interface CertificateKeyParts {
  /** The issuer's segment (`issuerKey` of its id). */
  issuer: string;
  /** The certificate id, for a directory of this layout. */
  id?: string;
  /** The directory name, for a directory of the first-name layout of earlier versions. */
  legacyName?: string;
  /** The rest of the key below the certificate's directory (`current.json`, `<serial>/key.pem`). */
  rest: string;
}

const POINTER = 'current.json';
const MEMBERS = 'cluster/members';
const ALPN_RECORDS = 'challenges/tls-alpn-01';
const ALPN_ACKS = 'challenges/tls-alpn-01-acks';
const ALPN_SUFFIX = '.key';

/**
 * What `key` holds below `prefix` when it is exactly `depth` non-empty segments deeper (joined
 * with `/`), else null.
 */
function childOf(prefix: string, key: string, depth = 1): string | null {
  if (!key.startsWith(`${prefix}/`)) return null;
  const rest = key.slice(prefix.length + 1);
  const parts = rest.split('/');
  return parts.length === depth && parts.every((p) => p.length > 0) ? rest : null;
}

export const layout = {
  /** The keys of the certificate with id `id` under `issuer`. */
  certificate(issuer: string, id: string): CertificateKeys {
    return certificateKeys(joinKey('certificates', issuerKey(issuer), certificateSegment(id)));
  },
  /**
   * Where earlier versions kept a certificate whose first name is `primaryName`. Read to find
   * what they stored (the pointer names its id); written only to remove it once migrated.
   */
  legacyCertificate(issuer: string, primaryName: string): CertificateKeys {
    return certificateKeys(joinKey('certificates', issuerKey(issuer), certificateName(primaryName)));
  },
  /** Splits a key below `certificates/`; null for anything else. */
  parseCertificate(key: string): CertificateKeyParts | null {
    const [root, issuer, name, ...rest] = key.split('/');
    if (root !== 'certificates' || !issuer || !name || rest.length === 0) return null;
    const id = certificateIdOf(name);
    if (id !== null) return { issuer, id, rest: rest.join('/') };
    if (name.startsWith(ID_MARK)) return null;
    return { issuer, legacyName: name, rest: rest.join('/') };
  },
  /** The lock held while obtaining the certificate with id `id` (one per id, whatever its names). */
  issueLock(id: string): string {
    return assertStoreKey(`issue/${certificateSegment(id)}`);
  },
  certificatesOf(issuer: string): string {
    return joinKey('certificates', issuerKey(issuer));
  },
  account(issuer: string, account: string): { dir: string; record: string; key: string } {
    const dir = joinKey('accounts', issuerKey(issuer), segment(account));
    return { dir, record: `${dir}/account.json`, key: `${dir}/key.pem` };
  },
  /** A challenge record, e.g. `challenges/tls-alpn-01/<name>.key`; any replica sharing the store can serve it. */
  challenge(type: string, id: string): string {
    return joinKey('challenges', type, id);
  },
  /**
   * Where the HTTP-01 answer for `token` lives. The `.key` suffix makes it sensitive: stores with
   * encryption keys seal it and refuse a plaintext value there, so a writer without the keys cannot
   * plant an answer that passes a CA's validation for the fleet's names. A token has no `.`, so no
   * token's key is another's.
   */
  http01Answer(token: string): string {
    return joinKey('challenges', 'http-01', `${segment(token)}.key`);
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
  /** Below which every certificate lives (for `list` and `watch`). */
  certificates(): string {
    return 'certificates';
  },
  /** Whether `key` is a certificate pointer (`current.json`, under an id or a first name). */
  isPointer(key: string): boolean {
    return layout.parseCertificate(key)?.rest === POINTER;
  },
  /** A replica's heartbeat record (replicas sharing a store). */
  member(replicaId: string): string {
    return assertStoreKey(`${MEMBERS}/${segment(replicaId)}`);
  },
  /** Below which the heartbeats are (for `list`). */
  members(): string {
    return MEMBERS;
  },
  /** The replica a heartbeat key is for; null for any other key. */
  parseMember(key: string): string | null {
    return childOf(MEMBERS, key);
  },
  /** Where the TLS-ALPN-01 challenge for `servername` is stored (`.key`: sealed like a private key). */
  alpnRecord(servername: string): string {
    return assertStoreKey(`${ALPN_RECORDS}/${segment(`${servername}${ALPN_SUFFIX}`)}`);
  },
  /** Below which the TLS-ALPN-01 challenges are (for `list` and `watch`). */
  alpnRecords(): string {
    return ALPN_RECORDS;
  },
  /** The server name a TLS-ALPN-01 challenge key is for; null for any other key. */
  parseAlpnRecord(key: string): string | null {
    const name = childOf(ALPN_RECORDS, key);
    if (name === null || !name.endsWith(ALPN_SUFFIX)) return null;
    return name.length > ALPN_SUFFIX.length ? name.slice(0, -ALPN_SUFFIX.length) : null;
  },
  /** A replica's acknowledgement that it holds a TLS-ALPN-01 challenge certificate in memory. */
  alpnAck(servername: string, replicaId: string): string {
    return assertStoreKey(`${ALPN_ACKS}/${segment(servername)}/${segment(replicaId)}`);
  },
  /** Below which the acknowledgements of `servername`'s challenge are. */
  alpnAcks(servername: string): string {
    return assertStoreKey(`${ALPN_ACKS}/${segment(servername)}`);
  },
  /** Splits an acknowledgement key; null for any other key. */
  parseAlpnAck(key: string): { servername: string; replica: string } | null {
    const rest = childOf(ALPN_ACKS, key, 2);
    if (rest === null) return null;
    const [servername, replica] = rest.split('/') as [string, string];
    return { servername, replica };
  },
  /** Whether a key holds a private key (stores that encrypt at rest use this). */
  isSensitive(key: string): boolean {
    return key.endsWith('key.pem') || key.endsWith('.key');
  },
} as const;
