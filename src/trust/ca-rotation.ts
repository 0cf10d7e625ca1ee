/**
 * Rotating the internal CA's root with no failed call at any step. The order is what makes it
 * safe; each step waits for the previous one to reach every consumer:
 *
 * 1. introduce  the next root is published beside the current one; the trust store refreshes, so
 *               every server (accepted client CAs) and client (accepted server CAs) trusts both.
 *               Nothing is signed by the new root yet, so nothing can fail.
 * 2. activate   the new root issues (fresh intermediate); `manager.renewAll()` re-issues every
 *               certificate under it. Peers already trust it (step 1) and still trust the old
 *               root, so certificates of either generation verify while the swaps happen.
 * 3. finish     the old root is dropped, guarded: the trust store refuses while any protected
 *               chain (the manager's certificates at least) still chains only to the old root.
 *
 * `settle` runs after steps 1 and 2: the place to wait for other replicas and peers (their own
 * trust stores polling, a sidecar re-reading the exported bundle). The orchestration resumes
 * from whatever phase the CA is in, so a rotation interrupted by a restart is finished by the
 * next call.
 */
import { CertkeeperError, optionError } from '../errors.js';
import type { InternalCA, RootRotationPhase, RootRotationStatus } from '../issuers/internal-ca.js';
import type { Store } from '../store/store.js';
import { InternalCaTrustSource } from './internal-ca-source.js';
import type { ProtectedChains, TrustStore } from './trust-store.js';

/** What a rotation uses of a `CertificateManager` (named here: trust/ does not import manager/). */
export interface RotatingManager {
  status(): readonly { id: string }[];
  certificate(id: string): { chainPem: string } | null;
  renewAll(): Promise<void>;
}

/** Options of `rotateCa`. */
export interface RotateCaOptions {
  ca: InternalCA;
  manager: RotatingManager;
  /** The trust store that has an `InternalCaTrustSource` for `ca`. */
  trust: TrustStore;
  /** The CA's store, if the CA was constructed without one and the manager's is not known here. */
  store?: Store;
  /** Awaited after the introduce and activate steps (propagation to replicas and peers). */
  settle?: (phase: Exclude<RootRotationPhase, 'none'>) => void | Promise<void>;
}

/** The manager's current chains, for the trust store's guard (`protect` option or method). */
export function managerChains(manager: RotatingManager): ProtectedChains {
  return () => {
    const chains: string[] = [];
    for (const status of manager.status()) {
      const served = manager.certificate(status.id);
      if (served) chains.push(served.chainPem);
    }
    return chains;
  };
}

function sourceFor(trust: TrustStore, ca: InternalCA): InternalCaTrustSource {
  const source = trust.sources.find((s) => s instanceof InternalCaTrustSource && s.ca === ca);
  if (!source) {
    throw optionError('trust', `has no InternalCaTrustSource for internal CA ${ca.name}`, 'rotateCa');
  }
  return source as InternalCaTrustSource;
}

/** Requires that the trust store now holds (or no longer holds) a root, after its refresh. */
async function expectTrust(trust: TrustStore, fingerprint: string, present: boolean): Promise<void> {
  const bundle = await trust.refresh();
  if (bundle.fingerprints.includes(fingerprint) !== present) {
    throw new CertkeeperError(
      'CA_ROTATION_STATE',
      `rotateCa: the trust bundle ${present ? 'lacks' : 'still holds'} root ${fingerprint} after a refresh`,
      { details: { fingerprint } },
    );
  }
}

/** Runs (or resumes) a root rotation to its end; resolves with the final status (`none`). */
export async function rotateCa(options: RotateCaOptions): Promise<RootRotationStatus> {
  const { ca, manager, trust, store } = options;
  const source = sourceFor(trust, ca);
  let status = await ca.rootRotation(store);
  if (status.phase === 'none') {
    status = await ca.beginRootRotation(store);
    await expectTrust(trust, status.next!, true);
    await options.settle?.('introduced');
  }
  if (status.phase === 'introduced') {
    status = await ca.activateNextRoot(store);
    await expectTrust(trust, status.current, true);
  }
  // Activated now or by an interrupted earlier call: either way every certificate is re-issued
  // under the new root before the old one may go. A failed re-issue rejects here (RENEWAL_FAILED)
  // and leaves the rotation 'activated': calling rotateCa again resumes from this step.
  await manager.renewAll();
  await options.settle?.('activated');
  const previous = status.previous!;
  // The manager's own chains are protected for the finish whether or not the caller registered
  // them: a certificate the manager took up between renewAll and here (another replica's, one
  // added with manage()) may still chain to the old root, and the guard then refuses to drop it.
  const unprotect = trust.protect(managerChains(manager));
  try {
    status = await ca.finishRootRotation({
      store,
      guard: (remaining) => trust.assertUpdate(remaining, source.name),
    });
  } finally {
    unprotect();
  }
  await expectTrust(trust, previous, false);
  return status;
}
