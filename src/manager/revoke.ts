/**
 * Revoking the served certificate of one managed certificate (where its issuer supports it) and
 * replacing it. The revoked generation is deleted from the store at once and is never served
 * again after the replacement, nor fallen back to (rollback, restart, damaged newer generation).
 */
import { CertkeeperError, describeCause } from '../errors.js';
import type { RevocationReason } from '../issuers/issuer.js';
import { layout } from '../store/layout.js';
import { withLock } from '../store/with-lock.js';
import type { ManagedCertificate } from './managed-certificate.js';
import { forgetRevoked } from './records.js';
import { removeLegacy } from './repair.js';
import type { Runtime } from './runtime.js';

export async function revokeCertificate(
  rt: Runtime,
  cert: ManagedCertificate,
  reason: RevocationReason,
): Promise<void> {
  const { id } = cert;
  const { options } = rt;
  const current = cert.current ?? (await cert.materialize());
  if (!current) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate is served for "${id}"`);
  const revoker = options.capabilities.get(current.issuer)?.revoker;
  if (!revoker)
    throw new CertkeeperError('NOT_SUPPORTED', `issuer ${current.issuer} does not support revocation`);
  await revoker.revoke({ chainPem: current.chainPem, key: current.key }, reason, rt.context(rt.signal));
  const serial = current.info.serialNumber;
  cert.markRevoked(serial);
  rt.emit('revoked', { id, serial, reason });
  // Recorded in the store before anything else can restore it; under the issuance lock, since
  // the pointer is rewritten. A failure here leaves the files until the replacement prunes them.
  try {
    await withLock(
      options.store,
      layout.issueLock(id),
      async (lease) => {
        await forgetRevoked(options.store, current.issuer, id, serial, cert.revoked, lease);
        // Loaded from an earlier version's first-name directory: that copy goes too.
        await removeLegacy(options.store, current.issuer, cert.config);
      },
      { ttlMs: options.lockTtlMs, signal: rt.signal },
    );
  } catch (error) {
    options.logger.warn('could not delete the revoked certificate from the store yet', {
      id,
      serial,
      error: describeCause(error),
    });
  }
  // Until a replacement is served, the revoked certificate still is: the caller must know.
  const failure = await cert.obtain('forced');
  if (failure) throw failure;
}
