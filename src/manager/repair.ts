/**
 * Writing back, once, what loading had to work around, so that restarts stop paying for it:
 *   - a damaged pointer (rebuilt from the newest valid generation) is written again;
 *   - a damaged newest generation (the previous one was served) is pruned and the pointer
 *     moved to the one served;
 *   - a certificate found in an earlier version's first-name directory is committed under its
 *     id, and that directory removed.
 * Under the certificate's issuance lock, only if it is free (a holder is about to commit a new
 * pointer anyway), and only if the store still holds what was found. Best effort: a store that
 * refuses the write leaves things as they were, still served from memory.
 */
import { describeCause } from '../errors.js';
import type { Logger } from '../logger.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type { Loaded } from './loader.js';
import type { CertificateConfig } from './options.js';
import { commitGeneration, deleteBelow, readPointerAt } from './records.js';
import type { StoredPointer } from './status.js';

export interface RepairEnv {
  store: Store;
  lockTtlMs: number;
  logger: Logger;
}

export async function healStored(
  env: RepairEnv,
  cert: CertificateConfig,
  stored: StoredPointer,
  loaded: Loaded,
  revoked: Iterable<string>,
): Promise<void> {
  const { store, logger } = env;
  try {
    const lease = await store.tryLock(layout.issueLock(cert.id), { ttlMs: env.lockTtlMs });
    if (!lease) return;
    try {
      if (!(await stillAsFound(store, cert, stored))) return;
      await commitGeneration(store, cert.id, loaded.generation, loaded.meta, null, {
        revoked: [...revoked, ...(stored.meta.revoked ?? [])],
        fence: lease,
      });
      if (stored.legacy) await removeLegacy(store, stored.issuer, cert);
      logger.info('stored certificate repaired', {
        id: cert.id,
        serial: loaded.meta.serial,
        was: stored.legacy
          ? 'first-name layout'
          : stored.rebuilt
            ? 'damaged pointer'
            : 'damaged newest generation',
      });
    } finally {
      await store.unlock(lease).catch(() => {});
    }
  } catch (error) {
    logger.warn('could not repair the stored certificate; it is served from memory', {
      id: cert.id,
      error: describeCause(error),
    });
  }
}

/** Whether the id directory still holds what loading found there (nobody committed since). */
async function stillAsFound(store: Store, cert: CertificateConfig, stored: StoredPointer): Promise<boolean> {
  let now: Awaited<ReturnType<typeof readPointerAt>>;
  try {
    now = await readPointerAt(store, layout.certificate(stored.issuer, cert.id));
  } catch {
    return stored.rebuilt !== undefined; // still damaged
  }
  if (stored.legacy) return now === null;
  if (stored.rebuilt) return now === null || now.id !== cert.id;
  return now?.serial === stored.meta.serial && now.fingerprint256 === stored.meta.fingerprint256;
}

/**
 * Removes the first-name directory an earlier version kept `cert` in, once it lives under its
 * id. Only when that directory's pointer names this id: it may be another id's (they shared it).
 */
export async function removeLegacy(store: Store, issuer: string, cert: CertificateConfig): Promise<void> {
  const keys = layout.legacyCertificate(issuer, cert.primary);
  const pointer = await readPointerAt(store, keys).catch(() => null);
  if (pointer?.id !== cert.id) return;
  // The pointer first: an earlier version still running then finds nothing, never half a directory.
  await store.delete(keys.current);
  await deleteBelow(store, keys.dir);
}
