/**
 * Reading what the store holds for a certificate, in two steps so that start-up stays cheap:
 * `findStored` reads only the pointers (one small read per issuer), `loadStored` reads, parses
 * and validates the chain and key of the pointed-at generation, falling back to the previous
 * one. Damage is reported through `report` and never thrown: a broken entry is healed, not fatal.
 * A store that cannot be read right now (STORE_IO, STORE_CLOSED) is not damage: that error is
 * thrown, so that callers wait and read again instead of re-issuing what the store still holds.
 */
import type { CertkeeperError } from '../errors.js';

/** Errors that say the store is unreachable, not that what it holds is damaged. */
export function isStoreUnavailable(error: CertkeeperError): boolean {
  return error.code === 'STORE_IO' || error.code === 'STORE_CLOSED';
}

import type { Store } from '../store/store.js';
import { type Generation, type GenerationMeta, loadGeneration, readPointer } from './records.js';
import { asError, type StoredPointer } from './state.js';

/** The pointer with the latest notAfter among the issuers' directories, or null. */
export async function findStored(
  store: Store,
  issuers: string[],
  primary: string,
  report: (error: CertkeeperError) => void,
): Promise<StoredPointer | null> {
  let best: StoredPointer | null = null;
  for (const issuer of issuers) {
    let meta: GenerationMeta | null;
    try {
      meta = await readPointer(store, issuer, primary);
    } catch (error) {
      const failure = asError(error);
      if (isStoreUnavailable(failure)) throw failure;
      report(failure);
      continue;
    }
    if (meta && (!best || Date.parse(meta.notAfter) > Date.parse(best.meta.notAfter)))
      best = { issuer, meta };
  }
  return best;
}

/**
 * Loads and validates the generation a pointer names, else the previous one. `validate` returns
 * the first problem (or null). Returns null when neither is usable.
 */
export async function loadStored(
  store: Store,
  stored: StoredPointer,
  primary: string,
  validate: (generation: Generation) => CertkeeperError | null,
  report: (error: CertkeeperError) => void,
): Promise<{ generation: Generation; meta: Omit<GenerationMeta, 'previous'> } | null> {
  const candidates: Omit<GenerationMeta, 'previous'>[] = [stored.meta];
  if (stored.meta.previous) candidates.push(stored.meta.previous);
  for (const meta of candidates) {
    try {
      const generation = await loadGeneration(store, stored.issuer, primary, meta);
      const problem = validate(generation);
      if (problem) throw problem;
      return { generation, meta };
    } catch (error) {
      const failure = asError(error);
      if (isStoreUnavailable(failure)) throw failure;
      report(failure);
    }
  }
  return null;
}
