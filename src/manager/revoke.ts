/**
 * Revoking the served certificate of one managed certificate (where its issuer supports it), or
 * finding it revoked on its CA's CRL, and replacing it. The revoked generation is deleted from
 * the store at once and is never served again after the replacement, nor fallen back to
 * (rollback, restart, damaged newer generation); connections still presenting it are retired.
 */
import { type ParsedCertificate, parseCertificates } from '../crypto/inspect.js';
import { parsePem } from '../crypto/pem.js';
import { CertkeeperError, describeCause } from '../errors.js';
import type { RevocationReason } from '../issuers/issuer.js';
import { RevocationChecker } from '../revocation/checker.js';
import { layout } from '../store/layout.js';
import { withLock } from '../store/with-lock.js';
import type { ManagedCertificate } from './managed-certificate.js';
import { forgetRevoked, type Generation } from './records.js';
import { removeLegacy } from './repair.js';
import { RevocationWatch, type RevocationWatchHost } from './revocation-watch.js';
import type { Runtime } from './runtime.js';

export async function revokeCertificate(
  rt: Runtime,
  cert: ManagedCertificate,
  reason: RevocationReason,
): Promise<void> {
  const { id } = cert;
  const current = cert.current ?? (await cert.materialize());
  if (!current) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate is served for "${id}"`);
  const revoker = rt.options.capabilities.get(current.issuer)?.revoker;
  if (!revoker)
    throw new CertkeeperError('NOT_SUPPORTED', `issuer ${current.issuer} does not support revocation`);
  await revoker.revoke({ chainPem: current.chainPem, key: current.key }, reason, rt.context(rt.signal));
  // Until a replacement is served, the revoked certificate still is: the caller must know.
  const failure = await replaceRevoked(rt, cert, current, reason);
  if (failure) throw failure;
}

/**
 * `current` is revoked (by us, or found on its CA's CRL): recorded so it is never served or
 * fallen back to again, deleted from the store, replaced at once; then the connections of
 * attached servers still presenting it are retired. Resolves with the replacement's failure.
 */
export async function replaceRevoked(
  rt: Runtime,
  cert: ManagedCertificate,
  current: Generation,
  reason: string,
): Promise<CertkeeperError | undefined> {
  const { id } = cert;
  const { options } = rt;
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
  const failure = await cert.obtain('forced');
  if (!failure) await rt.retireConnections(current.info.fingerprint256);
  return failure;
}

/**
 * The watch over the CRLs of what `certs` serve (revocation-watch.ts), unless the
 * `revocationCheck` option turned it off. A listed serial still served is replaced.
 */
/** The DER of the cRLDistributionPoints extension's OID (2.5.29.31). */
const CRL_DP_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x1f]);

export function revocationWatch(
  rt: Runtime,
  certs: () => Iterable<ManagedCertificate>,
): RevocationWatch | undefined {
  const { revocationCheck, clock, logger } = rt.options;
  if (revocationCheck === false) return undefined;
  const checker = new RevocationChecker({ ...revocationCheck, clock });
  // Parsed once per generation, and only when its leaf may name a CRL: a pass over a large fleet
  // of certificates that name none costs a map lookup each.
  const parsed = new WeakMap<Generation, ParsedCertificate[] | null>();
  const chainOf = (generation: Generation) => {
    let chain = parsed.get(generation);
    if (chain === undefined) {
      const [leaf] = parsePem(generation.chainPem);
      chain = leaf?.der.includes(CRL_DP_OID) ? parseCertificates(generation.chainPem) : null;
      parsed.set(generation, chain);
    }
    return chain;
  };
  const host: RevocationWatchHost = {
    *served() {
      for (const cert of certs()) {
        const chain = cert.current && chainOf(cert.current);
        if (chain) yield { id: cert.id, chain };
      }
    },
    revoked: async (id, serial, reason) => {
      const cert = [...certs()].find((c) => c.id === id);
      const current = cert?.current;
      if (!cert || current?.info.serialNumber !== serial) return;
      await rt.track(replaceRevoked(rt, cert, current, reason));
    },
  };
  return new RevocationWatch(checker, host, clock, logger, revocationCheck);
}
