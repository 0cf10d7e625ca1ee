/**
 * Adopting certificates another replica stored: on a change notification or the periodic
 * reconcile (`reconcile`), and as the re-check after taking the issuance lock (`adoptStored`),
 * so that replicas sharing a store serve the same certificate and never order it twice.
 */
import { type CertkeeperError, describeCause } from '../errors.js';
import { compatibleFacts, conflictError, factsKey, learnRevoked, sameFacts } from './claims.js';
import type { ManagerCore } from './core.js';
import { findStored, type Loaded, loadStored } from './loader.js';
import { renewalTime } from './policy.js';
import { type CertState, type StoredPointer, servedFacts } from './state.js';

/**
 * Whether the stored pointer names a newer certificate than the one this replica serves: one
 * that expires later, or one committed later. The commit time matters because expiry alone does
 * not order certificates: CAs stamp whole seconds (two issuances in one second expire together,
 * as a forced renewal right after issuance does at Pebble), some round notAfter further, and a
 * renewal under a shorter profile expires earlier than what it replaces. A pointer reverted by a
 * rollback is older on both counts and is not followed.
 */
function supersedes(found: { notAfter: string; storedAt: string }, state: CertState): boolean {
  const mine = servedFacts(state);
  if (!mine) return true;
  if (Date.parse(found.notAfter) > mine.notAfter.getTime()) return true;
  const mineStoredAt = Date.parse(state.currentMeta?.storedAt ?? state.stored?.meta.storedAt ?? '') || 0;
  return (Date.parse(found.storedAt) || 0) > mineStoredAt;
}

/**
 * Picks up a newer certificate another replica stored. A certificate only known by pointer
 * just moves its pointer; one in memory is loaded, validated and swapped in. Not while this
 * replica is obtaining it itself (its lock re-check does the same).
 */
export async function reconcile(core: ManagerCore, state: CertState): Promise<void> {
  if (state.inflight || state.removed || !core.running()) return;
  try {
    const found = await findLatest(core, state);
    const mine = servedFacts(state);
    if (!found || found.meta.fingerprint256 === mine?.fingerprint256) return;
    if (!supersedes(found.meta, state)) return;
    // Another configuration's certificate is taken only when it fits this one (claims.ts).
    if (!sameFacts(found.meta, state.cert) && !compatibleFacts(found.meta, state.cert)) return;
    if (!state.current) {
      if (state.revoked?.has(found.meta.serial)) return;
      state.stored = found;
      core.planRenewal(state, found.meta.fingerprint256, {
        notBefore: new Date(found.meta.notBefore),
        notAfter: new Date(found.meta.notAfter),
      });
      state.ready.resolve();
      core.emit('adopted', {
        id: state.cert.id,
        serial: found.meta.serial,
        notAfter: new Date(found.meta.notAfter),
      });
      core.reschedule(state);
      return;
    }
    const loaded = await loadFound(core, state, found);
    if (!loaded || state.inflight || state.current?.info.fingerprint256 === found.meta.fingerprint256) return;
    adopt(core, state, loaded);
    core.reschedule(state);
  } catch (error) {
    core.options.logger.debug('reconcile failed', { id: state.cert.id, error: describeCause(error) });
  }
}

/**
 * The re-check after taking the lock: another replica may have stored a newer certificate
 * while we waited. Adopt it instead of ordering again when it is valid and either not yet due
 * or (for a forced renewal) stored after the request was made.
 */
export async function adoptStored(
  core: ManagerCore,
  state: CertState,
  storedAfter: number | undefined,
): Promise<boolean> {
  const found = await findLatest(core, state);
  if (
    found &&
    !found.rebuilt &&
    !sameFacts(found.meta, state.cert) &&
    factsKey(found.meta) !== state.replaces
  )
    return adoptForeign(core, state, found);
  if (!found || found.meta.fingerprint256 === state.current?.info.fingerprint256) return false;
  if (storedAfter !== undefined && Date.parse(found.meta.storedAt) < storedAfter) return false;
  const loaded = await loadFound(core, state, found);
  if (!loaded) return false;
  const { generation } = loaded;
  if (state.current && !supersedes(loaded.meta, state)) return false;
  if (
    storedAfter === undefined &&
    renewalTime(generation.info, core.options.policy, state.sample) <= core.options.clock.now()
  )
    return false;
  adopt(core, state, loaded);
  return true;
}

/**
 * Another configuration committed this id after this replica started (claims.ts): adopt its
 * certificate if it is newer and fits this configuration, else refuse to replace it.
 */
async function adoptForeign(core: ManagerCore, state: CertState, found: StoredPointer): Promise<true> {
  if (
    compatibleFacts(found.meta, state.cert) &&
    found.meta.fingerprint256 !== state.current?.info.fingerprint256
  ) {
    const loaded = await loadFound(core, state, found);
    if (loaded && (!state.current || supersedes(loaded.meta, state))) {
      adopt(core, state, loaded);
      return true;
    }
  }
  throw conflictError(state.cert, found.meta);
}

/** The pointer stored under any of this certificate's issuers that is newest. */
async function findLatest(core: ManagerCore, state: CertState): Promise<StoredPointer | null> {
  const found = await findStored({
    store: core.options.store,
    cert: state.cert,
    issuers: core.issuersFor(state.cert).map((i) => i.id),
    validate: (g) => core.validate(state.cert, g, undefined, true),
    report: () => {},
    revoked: state.revoked,
  });
  if (found) learnRevoked(state, found.meta);
  return found;
}

/** Reads and validates what a pointer names; an unusable one is reported, not adopted. */
function loadFound(core: ManagerCore, state: CertState, found: StoredPointer): Promise<Loaded | null> {
  return loadStored(
    {
      store: core.options.store,
      cert: state.cert,
      validate: (g) => core.validate(state.cert, g),
      report: (error) => unadoptable(core, state, error),
      revoked: state.revoked,
    },
    { ...found, meta: { ...found.meta, previous: null } },
  );
}

function adopt(
  core: ManagerCore,
  state: CertState,
  { generation, meta }: Pick<Loaded, 'generation' | 'meta'>,
): void {
  core.install(state, generation, meta);
  core.emit('adopted', {
    id: state.cert.id,
    serial: generation.info.serialNumber,
    notAfter: generation.info.notAfter,
  });
}

/**
 * Another replica stored a certificate this one cannot use: damaged, not matching this
 * configuration, or sealed with an encryption key this replica does not have. Said at warn level
 * because it is a misconfiguration a person must fix; the current certificate stays in service.
 */
function unadoptable(core: ManagerCore, state: CertState, error: CertkeeperError): void {
  core.options.logger.warn('a certificate stored by another replica cannot be used here', {
    id: state.cert.id,
    code: error.code,
    error: error.message,
  });
}
