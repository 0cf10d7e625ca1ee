/**
 * Adopting certificates another replica stored: on a change notification or the periodic
 * reconcile (`reconcile`), and as the re-check after taking the issuance lock (`adoptStored`),
 * so that replicas sharing a store serve the same certificate and never order it twice.
 */
import { type CertkeeperError, describeCause } from '../errors.js';
import { compatibleFacts, conflictError, factsKey, sameFacts } from './claims.js';
import { findStored, type Loaded, loadStored } from './loader.js';
import type { ManagedCertificate } from './managed-certificate.js';
import { renewalTime } from './policy.js';
import type { Runtime } from './runtime.js';
import { type StoredPointer, servedFacts } from './status.js';

/**
 * Whether the stored pointer names a newer certificate than the one this replica serves: one
 * that expires later, or one committed later. The commit time matters because expiry alone does
 * not order certificates: CAs stamp whole seconds (two issuances in one second expire together,
 * as a forced renewal right after issuance does at Pebble), some round notAfter further, and a
 * renewal under a shorter profile expires earlier than what it replaces. A pointer reverted by a
 * rollback is older on both counts and is not followed.
 */
function supersedes(found: { notAfter: string; storedAt: string }, cert: ManagedCertificate): boolean {
  const mine = servedFacts(cert);
  if (!mine) return true;
  if (Date.parse(found.notAfter) > mine.notAfter.getTime()) return true;
  const mineStoredAt = Date.parse(cert.currentMeta?.storedAt ?? cert.stored?.meta.storedAt ?? '') || 0;
  return (Date.parse(found.storedAt) || 0) > mineStoredAt;
}

/**
 * Picks up a newer certificate another replica stored. A certificate only known by pointer
 * just moves its pointer; one in memory is loaded, validated and swapped in. Not while this
 * replica is obtaining it itself (its lock re-check does the same).
 */
export async function reconcile(rt: Runtime, cert: ManagedCertificate): Promise<void> {
  if (cert.renewing || cert.removed || !rt.running()) return;
  try {
    const found = await findLatest(rt, cert);
    const mine = servedFacts(cert);
    if (!found || found.meta.fingerprint256 === mine?.fingerprint256) return;
    if (!supersedes(found.meta, cert)) return;
    // Another configuration's certificate is taken only when it fits this one (claims.ts).
    if (!sameFacts(found.meta, cert.config) && !compatibleFacts(found.meta, cert.config)) return;
    if (!cert.current) {
      if (cert.revoked.has(found.meta.serial)) return;
      cert.adoptPointer(found);
      rt.emit('adopted', {
        id: cert.config.id,
        serial: found.meta.serial,
        notAfter: new Date(found.meta.notAfter),
      });
      cert.schedule();
      return;
    }
    const loaded = await loadFound(rt, cert, found);
    if (!loaded || cert.renewing || cert.current?.info.fingerprint256 === found.meta.fingerprint256) return;
    adopt(rt, cert, loaded);
    cert.schedule();
  } catch (error) {
    rt.options.logger.debug('reconcile failed', { id: cert.config.id, error: describeCause(error) });
  }
}

/**
 * The re-check after taking the lock: another replica may have stored a newer certificate
 * while we waited. Adopt it instead of ordering again when it is valid and either not yet due
 * or (for a forced renewal) stored after the request was made.
 */
export async function adoptStored(
  rt: Runtime,
  cert: ManagedCertificate,
  storedAfter: number | undefined,
): Promise<boolean> {
  const found = await findLatest(rt, cert);
  if (
    found &&
    !found.rebuilt &&
    !sameFacts(found.meta, cert.config) &&
    factsKey(found.meta) !== cert.replaces
  )
    return adoptForeign(rt, cert, found);
  if (!found || found.meta.fingerprint256 === cert.current?.info.fingerprint256) return false;
  if (storedAfter !== undefined && Date.parse(found.meta.storedAt) < storedAfter) return false;
  const loaded = await loadFound(rt, cert, found);
  if (!loaded) return false;
  const { generation } = loaded;
  if (cert.current && !supersedes(loaded.meta, cert)) return false;
  if (
    storedAfter === undefined &&
    renewalTime(generation.info, rt.options.policy, cert.plan.sample) <= rt.options.clock.now()
  )
    return false;
  adopt(rt, cert, loaded);
  return true;
}

/**
 * Another configuration committed this id after this replica started (claims.ts): adopt its
 * certificate if it is newer and fits this configuration, else refuse to replace it.
 */
async function adoptForeign(rt: Runtime, cert: ManagedCertificate, found: StoredPointer): Promise<true> {
  if (
    compatibleFacts(found.meta, cert.config) &&
    found.meta.fingerprint256 !== cert.current?.info.fingerprint256
  ) {
    const loaded = await loadFound(rt, cert, found);
    if (loaded && (!cert.current || supersedes(loaded.meta, cert))) {
      adopt(rt, cert, loaded);
      return true;
    }
  }
  throw conflictError(cert.config, found.meta);
}

/** The pointer stored under any of this certificate's issuers that is newest. */
async function findLatest(rt: Runtime, cert: ManagedCertificate): Promise<StoredPointer | null> {
  const found = await findStored({
    store: rt.options.store,
    cert: cert.config,
    issuers: rt.issuersFor(cert.config).map((i) => i.id),
    validate: (g) => rt.validate(cert.config, g, undefined, true),
    report: () => {},
    revoked: cert.revoked,
  });
  if (found) cert.markRevoked(...(found.meta.revoked ?? []));
  return found;
}

/** Reads and validates what a pointer names; an unusable one is reported, not adopted. */
function loadFound(rt: Runtime, cert: ManagedCertificate, found: StoredPointer): Promise<Loaded | null> {
  return loadStored(
    {
      store: rt.options.store,
      cert: cert.config,
      validate: (g) => rt.validate(cert.config, g),
      report: (error) => unadoptable(rt, cert, error),
      revoked: cert.revoked,
    },
    { ...found, meta: { ...found.meta, previous: null } },
  );
}

function adopt(
  rt: Runtime,
  cert: ManagedCertificate,
  { generation, meta }: Pick<Loaded, 'generation' | 'meta'>,
): void {
  cert.install(generation, meta, 'targets');
  rt.emit('adopted', {
    id: cert.config.id,
    serial: generation.info.serialNumber,
    notAfter: generation.info.notAfter,
  });
}

/**
 * Another replica stored a certificate this one cannot use: damaged, not matching this
 * configuration, or sealed with an encryption key this replica does not have. Said at warn level
 * because it is a misconfiguration a person must fix; the current certificate stays in service.
 */
function unadoptable(rt: Runtime, cert: ManagedCertificate, error: CertkeeperError): void {
  rt.options.logger.warn('a certificate stored by another replica cannot be used here', {
    id: cert.config.id,
    code: error.code,
    error: error.message,
  });
}
