/**
 * Reading what the store holds for a certificate, in two steps so that start-up stays cheap:
 * `findStored` reads only the pointers (one small read per issuer), `loadStored` reads, parses
 * and validates the chain and key of the pointed-at generation, falling back to the previous
 * one. Damage is reported through `report` and never thrown: a broken entry is healed, not fatal.
 *
 * Where: the certificate's id directory; when there is nothing there, the first-name directory
 * an earlier version wrote (used only when its pointer names this id). A pointer that is damaged
 * in itself (garbage, a directory, a Redis key of another type) is rebuilt from the newest valid
 * generation still stored, so one bad file never costs a working certificate.
 *
 * A store that cannot be read right now (STORE_IO, STORE_CLOSED), or an entry this process may
 * not read (STORE_UNREADABLE), is not damage: that error is thrown, so that callers wait and
 * read again instead of re-issuing what the store still holds.
 */
import { CertkeeperError, describeCause } from '../errors.js';
import type { Logger } from '../logger.js';
import { type CertificateKeys, layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type { CertificateConfig } from './options.js';
import {
  type Generation,
  type GenerationMeta,
  loadGenerationAt,
  metaOf,
  readPointerAt,
  storedSerials,
} from './records.js';
import type { Runtime } from './runtime.js';
import { asError, type StoredPointer } from './status.js';

/** Errors that say the store cannot be read now, not that what it holds is damaged. */
export function isStoreUnavailable(error: CertkeeperError): boolean {
  return error.code === 'STORE_IO' || error.code === 'STORE_CLOSED' || error.code === 'STORE_UNREADABLE';
}

/**
 * Damage this replica may write over: a pointer or generation that is broken for everyone. Not a
 * value sealed with an encryption key this replica lacks, nor a certificate made for other names
 * or another purpose: those may be what another replica serves.
 */
export function isDamage(error: CertkeeperError): boolean {
  if (error.code === 'STORE_CORRUPT') {
    const reason = error.details.reason;
    return reason !== 'unknown-key' && reason !== 'no-key';
  }
  return error.code === 'KEY_MISMATCH' || error.code === 'MALFORMED_PEM' || error.code === 'CHAIN_INVALID';
}

/** What looking a certificate up needs. */
export interface Lookup {
  store: Store;
  cert: CertificateConfig;
  /** The ids of the issuers whose directories are searched. */
  issuers: string[];
  /** The first problem of a generation for this certificate, or null. */
  validate(generation: Generation): CertkeeperError | null;
  report(error: CertkeeperError): void;
  /** Serials known to be revoked: never a candidate. */
  revoked?: ReadonlySet<string>;
}

export type Loaded = {
  generation: Generation;
  meta: Omit<GenerationMeta, 'previous'>;
  /** What was found needs writing again: a legacy location, a rebuilt pointer, a damaged newest generation. */
  heal: boolean;
};

/** How a managed certificate is looked up in the store; damage found is announced (`storedInvalid`). */
export function lookupFor(
  rt: Runtime,
  cert: CertificateConfig,
  revoked: ReadonlySet<string> | undefined,
): Lookup {
  return {
    store: rt.options.store,
    cert,
    issuers: rt.issuersFor(cert).map((i) => i.id),
    validate: (generation) => rt.validate(cert, generation, undefined, true),
    report: (error) => {
      rt.options.logger.warn(
        'stored certificate entry is unusable: never served (a valid generation is used, else a new one obtained)',
        { id: cert.id, code: error.code, error: error.message },
      );
      rt.emit('storedInvalid', { id: cert.id, error });
    },
    revoked,
  };
}

/** The store could not be read (down, or an entry this process may not read): nothing is ordered for it. */
export function reportUnreadable(logger: Logger, id: string, error: unknown): void {
  const failure = asError(error);
  logger.warn(
    failure.code === 'STORE_UNREADABLE'
      ? 'stored certificate is unreadable here (permissions?); nothing is ordered, reading again'
      : 'store unreachable while loading a certificate; reading again',
    { id, code: failure.code, error: describeCause(error) },
  );
}

/** The directory a found pointer lives in. */
export function keysOf(
  stored: Pick<StoredPointer, 'issuer' | 'legacy'>,
  cert: CertificateConfig,
): CertificateKeys {
  return stored.legacy
    ? layout.legacyCertificate(stored.issuer, cert.primary)
    : layout.certificate(stored.issuer, cert.id);
}

/** The pointer with the latest notAfter among the issuers' directories, or null. */
export async function findStored(lookup: Lookup): Promise<StoredPointer | null> {
  let best: StoredPointer | null = null;
  for (const issuer of lookup.issuers) {
    const found = await findIn(lookup, issuer);
    if (found && (!best || Date.parse(found.meta.notAfter) > Date.parse(best.meta.notAfter))) best = found;
  }
  return best;
}

async function findIn(lookup: Lookup, issuer: string): Promise<StoredPointer | null> {
  const { store, cert } = lookup;
  const keys = layout.certificate(issuer, cert.id);
  let meta: GenerationMeta | null;
  try {
    meta = await readPointerAt(store, keys);
    if (meta && meta.id !== cert.id) {
      throw new CertkeeperError('STORE_CORRUPT', `stored pointer at ${keys.current} names another id`, {
        details: { key: keys.current },
      });
    }
  } catch (error) {
    const failure = asError(error);
    if (isStoreUnavailable(failure)) throw failure;
    lookup.report(failure);
    return rebuild(lookup, issuer, keys);
  }
  if (meta) return { issuer, meta };
  // Nothing under the id: an earlier version may have stored it under its first name. That
  // directory may hold another id's certificate (they shared it), so only a pointer naming this
  // id counts, and damage there is not this certificate's to report.
  const legacyKeys = layout.legacyCertificate(issuer, cert.primary);
  let legacy: GenerationMeta | null;
  try {
    legacy = await readPointerAt(store, legacyKeys);
  } catch (error) {
    if (isStoreUnavailable(asError(error))) throw error;
    return null;
  }
  return legacy?.id === cert.id ? { issuer, meta: legacy, legacy: true } : null;
}

/**
 * A pointer for the newest valid generation below a damaged pointer, or null when none is valid.
 * Newest is the one written last (its files' modification time, which the store keeps): CAs stamp
 * whole seconds, so two generations issued in one second have the same validity.
 */
async function rebuild(lookup: Lookup, issuer: string, keys: CertificateKeys): Promise<StoredPointer | null> {
  const found: { generation: Generation; written: number }[] = [];
  const spared: number[] = [];
  for (const serial of await storedSerials(lookup.store, keys)) {
    if (lookup.revoked?.has(serial)) continue;
    const written = async () =>
      (await lookup.store.stat(keys.generation(serial).cert))?.modified.getTime() ?? 0;
    try {
      const generation = await loadGenerationAt(lookup.store, issuer, keys, {
        serial,
        chainSha256: '',
        storedAt: '',
      });
      const problem = lookup.validate(generation);
      if (problem) throw problem;
      found.push({ generation, written: await written() });
    } catch (error) {
      const failure = asError(error);
      if (isStoreUnavailable(failure)) throw failure;
      lookup.report(failure);
      if (!isDamage(failure)) spared.push(await written());
    }
  }
  const newest = found.reduce<(typeof found)[number] | undefined>(
    (best, next) => (!best || later(next, best) ? next : best),
    undefined,
  );
  if (!newest) return null;
  const meta = metaOf(newest.generation, lookup.cert, newest.written);
  // A newer generation this replica cannot use but another may serve is not written over.
  const repair = spared.every((written) => written < newest.written);
  return { issuer, meta: { ...meta, previous: null }, rebuilt: { repair } };
}

function later(
  a: { generation: Generation; written: number },
  b: { generation: Generation; written: number },
) {
  if (a.written !== b.written) return a.written > b.written;
  return a.generation.info.notAfter.getTime() > b.generation.info.notAfter.getTime();
}

/**
 * Loads and validates the generation a pointer names, else the previous one; a revoked serial
 * is neither. Returns null when neither is usable.
 */
export async function loadStored(
  lookup: Omit<Lookup, 'issuers'>,
  stored: StoredPointer,
): Promise<Loaded | null> {
  const keys = keysOf(stored, lookup.cert);
  const revoked = new Set([...(stored.meta.revoked ?? []), ...(lookup.revoked ?? [])]);
  const candidates: Omit<GenerationMeta, 'previous'>[] = [stored.meta];
  if (stored.meta.previous) candidates.push(stored.meta.previous);
  // What was worked around is written over only when what was skipped is damage.
  let spared = false;
  for (const meta of candidates) {
    if (revoked.has(meta.serial)) continue;
    try {
      const generation = await loadGenerationAt(lookup.store, stored.issuer, keys, meta);
      const problem = lookup.validate(generation);
      if (problem) throw problem;
      const fellBack = meta !== stored.meta;
      return {
        generation,
        meta,
        heal: !spared && (stored.legacy === true || (stored.rebuilt ? stored.rebuilt.repair : fellBack)),
      };
    } catch (error) {
      const failure = asError(error);
      if (isStoreUnavailable(failure)) throw failure;
      lookup.report(failure);
      if (!isDamage(failure)) spared = true;
    }
  }
  return null;
}
