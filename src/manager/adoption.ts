/**
 * Adopting certificates another replica stored: on a change notification or the periodic
 * reconcile (`reconcile`), and as the re-check after taking the issuance lock (`adoptStored`),
 * so that replicas sharing a store serve the same certificate and never order it twice.
 */
import { type CertkeeperError, describeCause } from '../errors.js';
import type { ManagerCore } from './core.js';
import { findStored, loadStored } from './loader.js';
import { renewalTime } from './policy.js';
import { type CertState, servedFacts } from './state.js';

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
    if (!state.current) {
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

/** The pointer stored under any of this certificate's issuers that is newest. */
function findLatest(core: ManagerCore, state: CertState) {
  const issuers = core.issuersFor(state.cert).map((i) => i.id);
  return findStored(core.options.store, issuers, state.cert.primary, () => {});
}

/** Reads and validates what a pointer names; an unusable one is reported, not adopted. */
function loadFound(
  core: ManagerCore,
  state: CertState,
  found: NonNullable<Awaited<ReturnType<typeof findLatest>>>,
) {
  return loadStored(
    core.options.store,
    { ...found, meta: { ...found.meta, previous: null } },
    state.cert.primary,
    (g) => core.validate(state.cert, g),
    (error) => unadoptable(core, state, error),
  );
}

function adopt(
  core: ManagerCore,
  state: CertState,
  { generation, meta }: NonNullable<Awaited<ReturnType<typeof loadFound>>>,
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
