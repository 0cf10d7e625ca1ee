/**
 * The deploy path of every new certificate, one straight line: store atomically (keeping the
 * previous generation) → make it current on every attached server → verify each live server with
 * a real handshake → emit. A failed live check restores the previous certificate in memory, on
 * the servers and in the store, and emits `liveVerifyFailed` and `rolledBack`. A revoked
 * certificate is never the previous one: it is not kept, and never restored.
 * (Validation against the issuer's anchors happened before, in issue.ts.)
 */
import { deploy } from '../deploy/deploy.js';
import { describeCause } from '../errors.js';
import type { LockLease } from '../store/store.js';
import type { ManagerCore } from './core.js';
import { commitGeneration, type Generation, metaOf, revertPointer } from './records.js';
import { removeLegacy } from './repair.js';
import type { CertState } from './state.js';

/** Store → swap → live verify → emit; on a failed live check, restore the previous certificate. */
export async function deployGeneration(
  core: ManagerCore,
  state: CertState,
  generation: Generation,
  started: number,
  lock?: { lease: LockLease; signal: AbortSignal },
): Promise<void> {
  const { cert } = state;
  const revoked = state.revoked ?? new Set<string>();
  const replaced = state.current;
  // A revoked certificate is no fallback: as if there were none.
  const previous = replaced && !revoked.has(replaced.info.serialNumber) ? replaced : undefined;
  const previousMeta = previous ? state.currentMeta : undefined;
  const meta = metaOf(generation, cert, core.options.clock.now());
  // `previous` must live under the same issuer directory to be found again for rollback.
  const sameIssuer = previousMeta && previousMeta.issuer === generation.issuer ? previousMeta : null;
  const { store } = core.options;
  await commitGeneration(store, cert.id, generation, meta, sameIssuer, {
    lease: lock?.signal,
    fence: lock?.lease,
    revoked,
    previousGeneration: previous,
  });
  // Committed under this configuration: it owns the id now (claims.ts).
  state.replaces = undefined;
  core.install(state, generation, meta, false);

  const result = await deploy(core.targets(), cert.id, generation, previous ?? null, {
    rollback: core.options.rollback,
    signal: core.signal,
    now: () => core.options.clock.now(),
  });
  for (const rollbackFailure of result.rollbackFailures) {
    core.options.logger.error('rolling a deploy target back failed; it may serve either certificate', {
      id: cert.id,
      target: rollbackFailure.target,
      code: rollbackFailure.error.code,
      error: rollbackFailure.error.message,
    });
  }
  const first = result.failures[0];
  if (first) {
    state.unverified = generation.info.fingerprint256;
    for (const failure of result.failures) {
      core.emit('liveVerifyFailed', {
        id: cert.id,
        error: failure.error,
        expected: generation.info.fingerprint256,
        target: failure.target,
      });
    }
    const all = core.options.rollback === 'all';
    if (all && previous && previousMeta) {
      core.install(state, previous, previousMeta, false);
      if (previous.issuer === generation.issuer)
        await revertPointer(store, previous.issuer, cert.id, previousMeta, revoked, lock?.lease);
    }
    core.emit('rolledBack', {
      id: cert.id,
      reason: first.error,
      rejectedSerial: generation.info.serialNumber,
      servingSerial: state.current?.info.serialNumber ?? null,
      target: first.target,
      targets: [...result.rolledBack],
    });
    // Under 'target' the certificate stands where it was taken; without a previous one there
    // was nothing to go back to. Either way the failure is the attempt's.
    if (all || !previous) throw first.error;
  }
  // Status must already read "healthy" when listeners of the events below look at it.
  if (!first) state.unverified = undefined;
  core.succeeded(state);
  const serial = generation.info.serialNumber;
  core.emit('swapped', {
    id: cert.id,
    serial,
    previousSerial: replaced?.info.serialNumber ?? null,
    servers: result.serving.length,
    verified: result.checks.length,
    targets: [...result.serving],
    durationMs: result.durationMs,
  });
  const durationMs = core.options.clock.now() - started;
  const facts = {
    id: cert.id,
    serial,
    notAfter: generation.info.notAfter,
    issuer: generation.issuer,
    durationMs,
  };
  if (replaced) core.emit('renewed', { ...facts, previousSerial: replaced.info.serialNumber });
  else core.emit('obtained', facts);
  core.options.logger.info('certificate deployed', {
    id: cert.id,
    serial,
    notAfter: generation.info.notAfter.toISOString(),
  });
  // Stored under its id now: what an earlier version kept under the first name goes.
  await removeLegacy(store, generation.issuer, cert).catch((error) =>
    core.options.logger.debug('could not remove the first-name directory', {
      id: cert.id,
      error: describeCause(error),
    }),
  );
}
