/**
 * Certificate generations in the store. A generation (chain + key) is written to its own
 * directory first; `current.json` is written last and is the atomic commit: a reader, or a replica
 * that crashes half-way, sees the old generation or the new one, never a mix. The pointer names
 * the previous generation, which is kept for rollback; older ones are pruned.
 *
 * Reading is defensive: any damage (unparsable pointer, missing or corrupt PEM, key that does not
 * match) is a `StoredEntryError` the manager reports and heals; it is never served.
 */

import { createHash } from 'node:crypto';
import { type CertificateInfo, parseCertificates } from '../crypto/inspect.js';
import type { KeyType } from '../crypto/keys.js';
import { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import type { CertificatePurpose } from '../issuers/issuer.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';

/** The facts of one generation, as kept in `current.json`. No key material. */
export interface GenerationMeta {
  version: 1;
  id: string;
  names: string[];
  keyType: KeyType;
  purpose: CertificatePurpose;
  issuer: string;
  serial: string;
  fingerprint256: string;
  /** SHA-256 of the stored chain PEM: a chain that lost its intermediate still parses. */
  chainSha256: string;
  notBefore: string;
  notAfter: string;
  storedAt: string;
  previous: Omit<GenerationMeta, 'previous'> | null;
}

/** A generation loaded into memory, ready to serve. */
export interface Generation {
  issuer: string;
  chainPem: string;
  key: PrivateKey;
  info: CertificateInfo;
  chain: CertificateInfo[];
  storedAt: number;
}

export type StoredGeneration = { meta: GenerationMeta; generation: Generation };

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function corrupt(what: string, key: string, cause?: unknown): CertkeeperError {
  const reason = isCertkeeperError(cause) ? `: ${cause.message}` : '';
  return new CertkeeperError('STORE_CORRUPT', `stored certificate ${what} at ${key} is damaged${reason}`, {
    cause,
    details: { key, reasonCode: isCertkeeperError(cause) ? cause.code : undefined },
  });
}

function parseMeta(raw: Uint8Array, key: string): GenerationMeta {
  let meta: GenerationMeta;
  try {
    meta = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (cause) {
    throw corrupt('pointer', key, cause);
  }
  if (
    meta?.version !== 1 ||
    typeof meta.serial !== 'string' ||
    !/^[0-9a-f]{1,64}$/.test(meta.serial) ||
    !Array.isArray(meta.names)
  ) {
    throw corrupt('pointer', key);
  }
  return meta;
}

/** Loads the generation that `meta` describes (current or previous). */
export async function loadGeneration(
  store: Store,
  issuer: string,
  primary: string,
  meta: Omit<GenerationMeta, 'previous'>,
): Promise<Generation> {
  const keys = layout.certificate(issuer, primary).generation(meta.serial);
  const [chainRaw, keyRaw] = await Promise.all([store.get(keys.cert), store.get(keys.key)]);
  if (!chainRaw) throw corrupt('chain', keys.cert, new CertkeeperError('STORE_CORRUPT', 'missing'));
  if (!keyRaw) throw corrupt('key', keys.key, new CertkeeperError('STORE_CORRUPT', 'missing'));
  let chain: ReturnType<typeof parseCertificates>;
  let key: PrivateKey;
  try {
    chain = parseCertificates(chainRaw);
  } catch (cause) {
    throw corrupt('chain', keys.cert, cause);
  }
  try {
    key = PrivateKey.fromPem(keyRaw);
  } catch (cause) {
    throw corrupt('key', keys.key, cause);
  }
  const leaf = chain[0]!;
  const chainPem = chain.map((c) => c.pem).join('');
  if (meta.chainSha256 && sha256(chainPem) !== meta.chainSha256) {
    throw corrupt(
      'chain',
      keys.cert,
      new CertkeeperError('STORE_CORRUPT', 'chain differs from the one committed'),
    );
  }
  if (leaf.info.serialNumber !== meta.serial) {
    throw corrupt(
      'chain',
      keys.cert,
      new CertkeeperError('STORE_CORRUPT', 'serial differs from its pointer'),
    );
  }
  return {
    issuer,
    chainPem,
    key,
    info: leaf.info,
    chain: chain.map((c) => c.info),
    storedAt: Date.parse(meta.storedAt) || 0,
  };
}

/** The current pointer, or null when nothing is stored. Throws STORE_CORRUPT for a damaged pointer. */
export async function readPointer(
  store: Store,
  issuer: string,
  primary: string,
): Promise<GenerationMeta | null> {
  const key = layout.certificate(issuer, primary).current;
  const raw = await store.get(key);
  return raw ? parseMeta(raw, key) : null;
}

export function metaOf(
  generation: Generation,
  facts: { id: string; names: string[]; keyType: KeyType; purpose: CertificatePurpose },
  storedAt: number,
): Omit<GenerationMeta, 'previous'> {
  return {
    version: 1,
    id: facts.id,
    names: facts.names,
    keyType: facts.keyType,
    purpose: facts.purpose,
    issuer: generation.issuer,
    serial: generation.info.serialNumber,
    fingerprint256: generation.info.fingerprint256,
    chainSha256: sha256(generation.chainPem),
    notBefore: generation.info.notBefore.toISOString(),
    notAfter: generation.info.notAfter.toISOString(),
    storedAt: new Date(storedAt).toISOString(),
  };
}

/**
 * Stores a new generation and makes it current, keeping the one it replaces as `previous`.
 * Returns the pointer written.
 */
export async function commitGeneration(
  store: Store,
  primary: string,
  generation: Generation,
  meta: Omit<GenerationMeta, 'previous'>,
  previous: Omit<GenerationMeta, 'previous'> | null,
  /** The issuance lock's signal: aborted once the lease may have lapsed (see withLock). */
  lease?: AbortSignal,
): Promise<GenerationMeta> {
  const keys = layout.certificate(generation.issuer, primary);
  const gen = keys.generation(meta.serial);
  await store.put(gen.key, generation.key.toPem());
  await store.put(gen.cert, generation.chainPem);
  const pointer: GenerationMeta = {
    ...meta,
    previous: previous && previous.serial !== meta.serial ? previous : null,
  };
  // The pointer is the commit. A holder whose lease may have lapsed (a long pause) must not
  // overwrite what the next holder committed: checked locally, right before the write, since the
  // stores have no conditional put. The generation files above are harmless leftovers.
  lease?.throwIfAborted();
  await store.put(keys.current, JSON.stringify(pointer, null, 2));
  await pruneGenerations(store, generation.issuer, primary, [meta.serial, pointer.previous?.serial]);
  return pointer;
}

/** Points `current.json` back at `target` (rollback), keeping the rejected one out of `previous`. */
export async function revertPointer(
  store: Store,
  issuer: string,
  primary: string,
  target: Omit<GenerationMeta, 'previous'>,
): Promise<void> {
  await store.put(
    layout.certificate(issuer, primary).current,
    JSON.stringify({ ...target, previous: null }, null, 2),
  );
}

/** Deletes generation directories other than those in `keep`. Best effort: a failure only leaves garbage. */
async function pruneGenerations(
  store: Store,
  issuer: string,
  primary: string,
  keep: (string | undefined)[],
): Promise<void> {
  const keys = layout.certificate(issuer, primary);
  try {
    const all = await store.list(keys.dir);
    for (const key of all) {
      const serial = key.slice(keys.dir.length + 1).split('/')[0]!;
      if (key === keys.current || keep.includes(serial)) continue;
      await store.delete(key);
    }
  } catch {
    // Pruning is housekeeping; the new generation is already committed.
  }
}
