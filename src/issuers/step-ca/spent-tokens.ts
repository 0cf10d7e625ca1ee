/**
 * Spent tokens, remembered in the store so that a one-time token is never presented twice: not
 * after a restart, not by another replica sharing the store, not by a retry loop. Only a SHA-256
 * of the token's `jti` is kept (see `tokenId`), never the token.
 *
 *   enrollment/<issuer>/tokens/<sha256 of jti>.json   { presentedAt, outcome, serial? }
 *   enrollment/<issuer>/root.pem                      the pinned root, re-checked by hash on read
 */
import { type CertkeeperError, isCertkeeperError } from '../../errors.js';
import { issuerKey, joinKey } from '../../store/layout.js';
import type { Store } from '../../store/store.js';

export interface SpentToken {
  presentedAt: string;
  outcome: string;
  serial?: string;
}

/**
 * Whether the CA itself refused the token (a 4xx in step-ca's error shape): then it was spent
 * (step-ca burns the jti early) or will be refused the same way again. No answer, a 5xx, or a page
 * that is not the CA's (an HTML proxy error, a garbled body) proves nothing: the token may be
 * intact, and presenting it again costs at most one more refusal.
 */
export function caRefused(error: unknown): error is CertkeeperError {
  if (!isCertkeeperError(error) || error.details.fromCa !== true) return false;
  const status = error.details.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** A key under `enrollment/<issuer>/` (built with the layout's validated segments). */
export function enrollmentKey(issuerId: string, ...parts: string[]): string {
  return joinKey('enrollment', issuerKey(issuerId), ...parts);
}

export async function readSpent(store: Store, issuerId: string, id: string): Promise<SpentToken | null> {
  const raw = await store.get(enrollmentKey(issuerId, 'tokens', `${id}.json`));
  if (!raw) return null;
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8')) as SpentToken;
  } catch {
    // A damaged record still says "this token was presented": never present it twice.
    return { presentedAt: 'unknown', outcome: 'unknown' };
  }
}

export async function rememberSpent(
  store: Store,
  issuerId: string,
  id: string,
  record: SpentToken,
): Promise<void> {
  await store.put(enrollmentKey(issuerId, 'tokens', `${id}.json`), JSON.stringify(record));
}
