/**
 * Certificate generations in the store, under the certificate's id (`layout.certificate`). A
 * generation (chain + key) is written to its own directory first; `current.json` is written last
 * and is the atomic commit: a reader, or a replica that crashes half-way, sees the old generation
 * or the new one, never a mix. The pointer names the previous generation, which is kept for
 * rollback, and the serials revoked through the manager, which are deleted and never served or
 * fallen back to again; older generations are pruned.
 *
 * Reading is defensive: any damage (unparsable pointer, missing or corrupt PEM, key that does not
 * match) is a `STORE_CORRUPT` error the manager reports and heals; it is never served.
 */

import { createHash } from 'node:crypto';
import { type CertificateInfo, parseCertificates } from '../crypto/inspect.js';
import type { KeyType } from '../crypto/keys.js';
import { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import type { CertificatePurpose } from '../issuers/issuer.js';
import { type CertificateKeys, layout } from '../store/layout.js';
import type { LockLease, Store } from '../store/store.js';

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
  /**
   * Serials of this certificate revoked through the manager (most recent last, bounded): never
   * served, never a fallback. Only on the pointer itself, absent when there are none.
   */
  revoked?: string[];
}

/** How many revoked serials a pointer remembers (their files are deleted at once anyway). */
const MAX_REVOKED = 16;
const SERIAL = /^[0-9a-f]{1,64}$/;

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
    typeof meta.id !== 'string' ||
    typeof meta.serial !== 'string' ||
    !SERIAL.test(meta.serial) ||
    !Array.isArray(meta.names) ||
    (meta.previous != null &&
      (typeof meta.previous.serial !== 'string' || !SERIAL.test(meta.previous.serial))) ||
    (meta.revoked !== undefined &&
      (!Array.isArray(meta.revoked) || !meta.revoked.every((r) => typeof r === 'string' && SERIAL.test(r))))
  ) {
    throw corrupt('pointer', key);
  }
  return meta;
}

/** Loads the generation that `meta` describes (current or previous) from the directory `keys`. */
export async function loadGenerationAt(
  store: Store,
  issuer: string,
  keys: CertificateKeys,
  meta: Pick<GenerationMeta, 'serial' | 'chainSha256' | 'storedAt'>,
): Promise<Generation> {
  const gen = keys.generation(meta.serial);
  const [chainRaw, keyRaw] = await Promise.all([store.get(gen.cert), store.get(gen.key)]);
  if (!chainRaw) throw corrupt('chain', gen.cert, new CertkeeperError('STORE_CORRUPT', 'missing'));
  if (!keyRaw) throw corrupt('key', gen.key, new CertkeeperError('STORE_CORRUPT', 'missing'));
  let chain: ReturnType<typeof parseCertificates>;
  let key: PrivateKey;
  try {
    chain = parseCertificates(chainRaw);
  } catch (cause) {
    throw corrupt('chain', gen.cert, cause);
  }
  try {
    key = PrivateKey.fromPem(keyRaw);
  } catch (cause) {
    throw corrupt('key', gen.key, cause);
  }
  const leaf = chain[0]!;
  const chainPem = chain.map((c) => c.pem).join('');
  if (meta.chainSha256 && sha256(chainPem) !== meta.chainSha256) {
    throw corrupt(
      'chain',
      gen.cert,
      new CertkeeperError('STORE_CORRUPT', 'chain differs from the one committed'),
    );
  }
  if (leaf.info.serialNumber !== meta.serial) {
    throw corrupt('chain', gen.cert, new CertkeeperError('STORE_CORRUPT', 'serial differs from its pointer'));
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

/** Loads the generation `meta` describes, stored under the certificate `id` of `issuer`. */
export function loadGeneration(
  store: Store,
  issuer: string,
  id: string,
  meta: Omit<GenerationMeta, 'previous'>,
): Promise<Generation> {
  return loadGenerationAt(store, issuer, layout.certificate(issuer, id), meta);
}

/** The serials of the generation directories below `keys.dir` (whatever their state). */
export async function storedSerials(store: Store, keys: CertificateKeys): Promise<string[]> {
  const serials = new Set<string>();
  for (const key of await store.list(keys.dir)) {
    const serial = keys.serialOf(key);
    if (serial) serials.add(serial);
  }
  return [...serials];
}

/** The pointer in `keys`, or null when there is none. Throws STORE_CORRUPT for a damaged pointer. */
export async function readPointerAt(store: Store, keys: CertificateKeys): Promise<GenerationMeta | null> {
  const raw = await store.get(keys.current);
  return raw ? parseMeta(raw, keys.current) : null;
}

/** The current pointer of certificate `id` under `issuer`, or null. Throws STORE_CORRUPT when damaged. */
export function readPointer(store: Store, issuer: string, id: string): Promise<GenerationMeta | null> {
  return readPointerAt(store, layout.certificate(issuer, id));
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
 * Stores a new generation and makes it current, keeping the one it replaces as `previous` (unless
 * revoked). Revoked serials are remembered by the pointer, and their directories pruned with
 * every other generation. Returns the pointer written.
 */
export async function commitGeneration(
  store: Store,
  id: string,
  generation: Generation,
  meta: Omit<GenerationMeta, 'previous'>,
  previous: Omit<GenerationMeta, 'previous'> | null,
  options: CommitOptions = {},
): Promise<GenerationMeta> {
  const { lease } = options;
  const keys = layout.certificate(generation.issuer, id);
  const gen = keys.generation(meta.serial);
  await store.put(gen.key, generation.key.toPem());
  await store.put(gen.cert, generation.chainPem);
  const gone = [...new Set(options.revoked ?? [])].filter((s) => s !== meta.serial).slice(-MAX_REVOKED);
  const kept =
    previous && previous.serial !== meta.serial && !gone.includes(previous.serial) ? previous : null;
  if (kept && options.previousGeneration?.info.serialNumber === kept.serial)
    await ensureGeneration(store, keys, options.previousGeneration);
  const pointer: GenerationMeta = {
    ...withoutPointerFields(meta),
    previous: kept && withoutPointerFields(kept),
    ...(gone.length > 0 ? { revoked: gone } : {}),
  };
  // The pointer is the commit. A holder whose lease lapsed (a long pause) must not overwrite what
  // the next holder committed: the write is fenced by the lease (the store refuses it with
  // LOCK_LOST once another holder has the lock), and checked locally first to fail early. The
  // generation files above are harmless leftovers.
  lease?.throwIfAborted();
  await writePointer(store, keys, pointer, options.fence, lease);
  await pruneGenerations(store, keys, [meta.serial, pointer.previous?.serial]);
  return pointer;
}

export interface CommitOptions {
  /** The issuance lock's signal: aborted once the lease may have lapsed (see withLock). */
  lease?: AbortSignal;
  /** The issuance lock's lease: the pointer write is fenced by it (Store "Fenced writes"). */
  fence?: LockLease;
  /** Serials revoked: remembered by the pointer, never kept as `previous`, pruned. */
  revoked?: Iterable<string>;
  /**
   * The previous generation in memory: written too if its files are not in this directory (it
   * was loaded from an earlier version's first-name directory), so a rollback finds it here.
   */
  previousGeneration?: Generation;
}

/** Writes a generation's files unless both are there already. */
async function ensureGeneration(store: Store, keys: CertificateKeys, generation: Generation): Promise<void> {
  const gen = keys.generation(generation.info.serialNumber);
  const [cert, key] = await Promise.all([store.stat(gen.cert), store.stat(gen.key)]);
  if (cert && key) return;
  await store.put(gen.key, generation.key.toPem());
  await store.put(gen.cert, generation.chainPem);
}

/** Points `current.json` back at `target` (rollback), keeping the rejected one out of `previous`. */
export async function revertPointer(
  store: Store,
  issuer: string,
  id: string,
  target: Omit<GenerationMeta, 'previous'>,
  revoked: Iterable<string> = [],
  fence?: LockLease,
): Promise<void> {
  const gone = [...new Set(revoked)].slice(-MAX_REVOKED);
  await writePointer(
    store,
    layout.certificate(issuer, id),
    {
      ...withoutPointerFields(target),
      previous: null,
      ...(gone.length > 0 ? { revoked: gone } : {}),
    },
    fence,
  );
}

/**
 * Records that `serial` was revoked and deletes its generation: the pointer keeps naming it (the
 * replacement is not there yet) but lists it as revoked, so no reader serves it or falls back to
 * it; a `previous` that is this serial is dropped. Call under the certificate's issuance lock.
 */
export async function forgetRevoked(
  store: Store,
  issuer: string,
  id: string,
  serial: string,
  revoked: Iterable<string>,
  fence?: LockLease,
): Promise<void> {
  const keys = layout.certificate(issuer, id);
  const pointer = await readPointerAt(store, keys).catch(() => null);
  if (pointer) {
    const gone = [...new Set([...(pointer.revoked ?? []), ...revoked, serial])].slice(-MAX_REVOKED);
    await writePointer(
      store,
      keys,
      {
        ...pointer,
        previous: pointer.previous && !gone.includes(pointer.previous.serial) ? pointer.previous : null,
        revoked: gone,
      },
      fence,
    );
  }
  await deleteBelow(store, keys.generation(serial).dir);
}

/**
 * Writes a pointer, fenced by `fence` when given (a lapsed holder's write is refused with
 * LOCK_LOST). A pointer key the store reports as damaged in itself (a directory where the file
 * should be, a Redis key of another type) is cleared once and written again: the new pointer is
 * the repair.
 */
async function writePointer(
  store: Store,
  keys: CertificateKeys,
  pointer: GenerationMeta,
  fence?: LockLease,
  lease?: AbortSignal,
): Promise<void> {
  const body = JSON.stringify(pointer, null, 2);
  const options = fence ? { fence } : undefined;
  try {
    await store.put(keys.current, body, options);
  } catch (error) {
    if (!isCertkeeperError(error, 'STORE_CORRUPT')) throw error;
    await deleteBelow(store, keys.current);
    await store.delete(keys.current, options);
    lease?.throwIfAborted();
    await store.put(keys.current, body, options);
  }
}

/** Deletes every key strictly below `prefix` (a generation directory, or junk below a pointer). */
export async function deleteBelow(store: Store, prefix: string): Promise<void> {
  for (const key of await store.list(prefix)) if (key !== prefix) await store.delete(key);
}

function withoutPointerFields(meta: Omit<GenerationMeta, 'previous'>): Omit<GenerationMeta, 'previous'> {
  const { previous: _previous, revoked: _revoked, ...facts } = meta as GenerationMeta;
  return facts;
}

/**
 * Deletes generation directories other than those in `keep`. Only `<serial>/...` keys are
 * touched: the pointer, and anything else someone put there, stay. Best effort: a failure only
 * leaves garbage.
 */
async function pruneGenerations(
  store: Store,
  keys: CertificateKeys,
  keep: (string | undefined)[],
): Promise<void> {
  try {
    for (const serial of await storedSerials(store, keys)) {
      if (!keep.includes(serial)) await deleteBelow(store, keys.generation(serial).dir);
    }
  } catch {
    // Pruning is housekeeping; the new generation is already committed.
  }
}
