/**
 * The embedded CA's whole state in one record, `ca/<name>/state.key`: every certificate with its
 * key (root, intermediate, next and previous root during a rotation, retired intermediates), the
 * revocation list and a version. Writing it is the CA's only commit (one atomic `put`, under the
 * CA lock), so a crash leaves the state before or after a change, never a mix.
 *
 * Its name makes it sensitive (`layout.isSensitive`), so stores that encrypt private keys seal
 * it, which authenticates all of it: a store writer without the encryption key can neither read
 * nor forge it. Decoding re-checks what binds the parts together (each key matches its
 * certificate, the intermediate and retired ones are signed by a root of this CA, roots are
 * self-signed), and anything else is CA_CORRUPT, never repaired by making a new root.
 *
 * With its root offline (`certkeeper ca init`, see `offline.ts`) the record holds the root
 * certificate without its key, and the root's CRL as it was signed offline and imported.
 */
import { parseCertificates } from '../../crypto/inspect.js';
import { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError, isCertkeeperError } from '../../errors.js';
import type { RevocationReason } from '../issuer.js';
import { type Authority, checkAuthority, checkOfflineRoot, type RootAuthority } from './authority.js';

export const STATE_FILE = 'state.key';
const FORMAT = 1;

export const REVOCATION_REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
];

export interface RevokedEntry {
  /** Lowercase hex. */
  serial: string;
  reason: RevocationReason;
  revokedAt: string;
  /** SKI of the CA certificate that issued it; its CRL lists it. Absent: every intermediate's. */
  issuerKeyId?: string;
}

export interface CaState {
  /** Increases by one with every commit; an older one read later is a replay. */
  version: number;
  /** The issuing root; its key is null when it is kept offline. */
  root: RootAuthority;
  intermediate: Authority;
  /** During a root rotation: the next root, published before it signs (`introduced`). */
  next: Authority | null;
  /** During a root rotation: the replaced root, published until the rotation finishes. */
  previous: Authority | null;
  /** Replaced intermediates whose leaves may still be in service: they sign CRLs for them. */
  retired: Authority[];
  revoked: RevokedEntry[];
  /** Root offline: its CRL (PEM), signed offline and imported (`certkeeper ca sign-crl`). */
  rootCrl: string | null;
}

interface StoredAuthority {
  cert: string;
  key: string | null;
}

const stored = (a: RootAuthority): StoredAuthority => ({
  cert: a.certificate.pem,
  key: a.key ? a.key.toPem() : null,
});

/** Whether the root's key is kept offline (not in the store). */
export const rootOffline = (state: CaState): boolean => state.root.key === null;

export function encodeState(state: CaState): string {
  return JSON.stringify({
    format: FORMAT,
    version: state.version,
    root: stored(state.root),
    intermediate: stored(state.intermediate),
    next: state.next ? stored(state.next) : null,
    previous: state.previous ? stored(state.previous) : null,
    retired: state.retired.map(stored),
    revoked: state.revoked,
    ...(state.rootCrl ? { rootCrl: state.rootCrl } : {}),
  });
}

/** Parses and checks a state record; every flaw is CA_CORRUPT naming the part. */
export function decodeState(caName: string, raw: Uint8Array): CaState {
  const corrupt = (which: string, why: string, cause?: unknown) =>
    new CertkeeperError('CA_CORRUPT', `internal CA ${caName}: ${which} in the store is damaged (${why})`, {
      ...(cause === undefined ? {} : { cause }),
      details: { which },
    });
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (error) {
    throw corrupt(STATE_FILE, 'not JSON', error);
  }
  if (typeof record !== 'object' || record === null || record.format !== FORMAT) {
    throw corrupt(STATE_FILE, 'unknown format');
  }
  const version = record.version;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw corrupt(STATE_FILE, 'bad version');
  }
  /** A stored certificate with its key; `keyless` allows a null key (the offline root). */
  function authority(which: string, value: unknown): Authority;
  function authority(which: string, value: unknown, keyless: true): RootAuthority;
  function authority(which: string, value: unknown, keyless = false): RootAuthority {
    const { cert, key } = (value ?? {}) as Partial<StoredAuthority>;
    if (typeof cert !== 'string' || (typeof key !== 'string' && !(keyless && key === null)))
      throw corrupt(which, 'missing');
    try {
      const [certificate, ...extra] = parseCertificates(cert, `internal CA ${which}`);
      if (extra.length > 0) throw corrupt(which, 'more than one certificate');
      return { key: key === null ? null : PrivateKey.fromPem(key!), certificate: certificate! };
    } catch (error) {
      throw isCertkeeperError(error, 'CA_CORRUPT') ? error : corrupt(which, 'unreadable', error);
    }
  }
  const optional = (which: string, value: unknown) => (value == null ? null : authority(which, value));
  // The root alone may come without its key: then it is kept offline.
  const root = authority('root', record.root, true);
  if (root.key) checkAuthority(caName, 'root', { key: root.key, certificate: root.certificate }, 'self');
  else checkOfflineRoot(caName, root.certificate);
  const rootCrl = record.rootCrl ?? null;
  if (rootCrl !== null && (typeof rootCrl !== 'string' || !rootCrl.includes('-----BEGIN X509 CRL-----')))
    throw corrupt('root CRL', 'not a PEM CRL');
  const next = optional('root-next', record.next);
  if (next) checkAuthority(caName, 'root-next', next, 'self');
  const previous = optional('root-previous', record.previous);
  if (previous) checkAuthority(caName, 'root-previous', previous, 'self');
  const intermediate = authority('intermediate', record.intermediate);
  checkAuthority(caName, 'intermediate', intermediate, [root.certificate]);
  if (!Array.isArray(record.retired)) throw corrupt(STATE_FILE, 'retired is not a list');
  const signers = [root.certificate, ...(previous ? [previous.certificate] : [])];
  const retired = record.retired.map((value, i) => {
    const a = authority(`retired[${i}]`, value);
    checkAuthority(caName, `retired[${i}]`, a, signers);
    return a;
  });
  return {
    version,
    root,
    intermediate,
    next,
    previous,
    retired,
    revoked: revokedList(caName, record.revoked),
    rootCrl,
  };
}

/** A revocation list (this record's, or an older store's `revoked.json`), checked entry by entry. */
export function revokedList(caName: string, value: unknown): RevokedEntry[] {
  const bad = () =>
    new CertkeeperError('CA_CORRUPT', `internal CA ${caName}: the revocation list is damaged`, {
      details: { which: 'revoked' },
    });
  if (!Array.isArray(value)) throw bad();
  return value.map((entry: Partial<RevokedEntry>) => {
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof entry.serial !== 'string' ||
      !/^[0-9a-f]{1,64}$/.test(entry.serial) ||
      !REVOCATION_REASONS.includes(entry.reason as RevocationReason) ||
      typeof entry.revokedAt !== 'string' ||
      Number.isNaN(Date.parse(entry.revokedAt)) ||
      (entry.issuerKeyId !== undefined &&
        (typeof entry.issuerKeyId !== 'string' || !/^[0-9a-f]{1,128}$/.test(entry.issuerKeyId)))
    ) {
      throw bad();
    }
    return {
      serial: entry.serial,
      reason: entry.reason as RevocationReason,
      revokedAt: entry.revokedAt,
      ...(entry.issuerKeyId ? { issuerKeyId: entry.issuerKeyId } : {}),
    };
  });
}

/** The roots published for trust: the issuing one, and the next or previous during a rotation. */
export function publishedRoots(state: CaState): string[] {
  const pems = [state.root.certificate.pem];
  if (state.next) pems.push(state.next.certificate.pem);
  if (state.previous) pems.push(state.previous.certificate.pem);
  return [...new Set(pems)];
}
