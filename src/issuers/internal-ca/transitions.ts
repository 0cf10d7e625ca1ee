/**
 * Every change to the embedded CA as a function from one state to the next. Nothing here touches
 * the store: `record.ts` runs these under the CA lock and commits the result in one write, so
 * each change happens whole or not at all. A function returns the state it was given when there
 * is nothing to do (no commit then).
 */
import type { ParsedCertificate } from '../../crypto/inspect.js';
import { CertkeeperError } from '../../errors.js';
import type { RevocationReason } from '../issuer.js';
import { type Authority, type CaProfile, makeIntermediate, makeRoot, resignRoot } from './authority.js';
import { type CaState, rootOffline } from './state.js';

export async function createState(profile: CaProfile, now: number): Promise<CaState> {
  const root = await makeRoot(profile, now, false);
  const intermediate = await makeIntermediate(profile, root, now);
  return {
    version: 0,
    root,
    intermediate,
    next: null,
    previous: null,
    retired: [],
    revoked: [],
    rootCrl: null,
  };
}

/**
 * CA_ROOT_OFFLINE: `operation` needs the root key, which this CA keeps offline; the message says
 * which command to run on the machine that holds it.
 */
export function rootOfflineError(profile: CaProfile, operation: string, command: string): CertkeeperError {
  return new CertkeeperError(
    'CA_ROOT_OFFLINE',
    `internal CA ${profile.name}: ${operation} needs the root key, which is kept offline; ` +
      `run \`${command}\` where the root key is`,
    { details: { operation, command } },
  );
}

export const signIntermediateCommand = (profile: CaProfile) =>
  `certkeeper ca sign-intermediate --ca-name ${profile.name} --root-key <file>`;
export const signCrlCommand = (profile: CaProfile) =>
  `certkeeper ca sign-crl --ca-name ${profile.name} --root-key <file>`;

/** The root as a signer, or CA_ROOT_OFFLINE naming `command`. */
function rootSigner(state: CaState, profile: CaProfile, operation: string, command: string): Authority {
  const { key, certificate } = state.root;
  if (!key) throw rootOfflineError(profile, operation, command);
  return { key, certificate };
}

/**
 * Whether the intermediate can go on signing at `now`: valid already (not made while the clock
 * ran ahead), and with enough life left: at least 10 leaf lifetimes or a third of its own
 * lifetime, whichever is more, capped at half of it.
 */
export function intermediateUsable(state: CaState, profile: CaProfile, now: number): boolean {
  const { notBefore, notAfter, lifetimeMs } = state.intermediate.certificate.info;
  if (notBefore.getTime() > now) return false;
  const life = Math.min(lifetimeMs, profile.intermediateLifetimeMs);
  const margin = Math.max(10 * profile.leafLifetimeMs, life / 3);
  return notAfter.getTime() - now > Math.min(margin, life / 2);
}

export function needsHealing(state: CaState, profile: CaProfile, now: number): boolean {
  // Nothing here can heal a CA whose root is offline: InternalCA checks and warns instead.
  if (rootOffline(state)) return false;
  return state.root.certificate.info.notBefore.getTime() > now || !intermediateUsable(state, profile, now);
}

/**
 * Makes the CA usable at `now`: a root whose validity has not started (made while the clock ran
 * ahead) is re-signed for its own key, and an intermediate that is not valid yet or near its end
 * is replaced (the old one retired, to sign CRLs for its leaves).
 */
export async function heal(state: CaState, profile: CaProfile, now: number): Promise<CaState> {
  if (!needsHealing(state, profile, now)) return state;
  let next = state;
  if (state.root.certificate.info.notBefore.getTime() > now) {
    next = { ...next, root: await resignRoot(rootSigner(state, profile, 'heal', ''), now) };
  }
  if (!intermediateUsable(next, profile, now)) next = await replaceIntermediate(next, profile, now);
  return next;
}

/**
 * A fresh intermediate from the root. Without `reason` the old one is retired: its leaves stay
 * valid and it keeps signing their CRL until it expires. With a `reason` it is revoked: the
 * root's CRL lists it, so every leaf under it (and any a thief of its key makes) is refused by
 * verifiers that check CRLs, and its key is dropped.
 */
export async function replaceIntermediate(
  state: CaState,
  profile: CaProfile,
  now: number,
  reason?: RevocationReason,
  signer: Authority = rootSigner(
    state,
    profile,
    'replacing the intermediate',
    signIntermediateCommand(profile),
  ),
): Promise<CaState> {
  const old = state.intermediate;
  const intermediate = await makeIntermediate(profile, signer, now);
  const alive = state.retired.filter((r) => r.certificate.info.notAfter.getTime() > now);
  if (!reason) return { ...state, intermediate, retired: [...alive, old] };
  return {
    ...state,
    intermediate,
    retired: alive,
    revoked: [...state.revoked, entry(old.certificate, reason, now)],
  };
}

function entry(certificate: ParsedCertificate, reason: RevocationReason, now: number) {
  return {
    serial: certificate.info.serialNumber,
    reason,
    revokedAt: new Date(now).toISOString(),
    ...(certificate.info.authorityKeyId ? { issuerKeyId: certificate.info.authorityKeyId } : {}),
  };
}

const same = (a: { certificate: ParsedCertificate }, b: ParsedCertificate) =>
  a.certificate.info.fingerprint256 === b.info.fingerprint256;

/**
 * Revokes a leaf, or one of this CA's intermediates: the current one is replaced at once (as
 * `replaceIntermediate` with the reason), a retired one loses its key. Roots are rotated, not
 * revoked. Already revoked: unchanged.
 */
export async function revoke(
  state: CaState,
  profile: CaProfile,
  certificate: ParsedCertificate,
  reason: RevocationReason,
  now: number,
): Promise<CaState> {
  if ([state.root, state.next, state.previous].some((r) => r && same(r, certificate))) {
    throw new CertkeeperError('NOT_SUPPORTED', `internal CA ${profile.name}: a root is rotated, not revoked`);
  }
  if (same(state.intermediate, certificate)) return replaceIntermediate(state, profile, now, reason);
  if (state.revoked.some((e) => e.serial === certificate.info.serialNumber)) return state;
  return {
    ...state,
    retired: state.retired.filter((r) => !same(r, certificate)),
    revoked: [...state.revoked, entry(certificate, reason, now)],
  };
}

function rotationState(profile: CaProfile, step: string, why: string): CertkeeperError {
  return new CertkeeperError('CA_ROTATION_STATE', `internal CA ${profile.name}: ${step}: ${why}`, {
    details: { step },
  });
}

/** Root rotation, step 1: a next root, published beside the issuing one. Idempotent. */
export async function beginRootRotation(state: CaState, profile: CaProfile, now: number): Promise<CaState> {
  if (state.previous) {
    throw rotationState(profile, 'beginRootRotation', 'a previous rotation is not finished');
  }
  if (state.next) return state;
  if (rootOffline(state)) {
    // No command rotates an offline root yet: say so rather than name one.
    throw new CertkeeperError(
      'CA_ROOT_OFFLINE',
      `internal CA ${profile.name}: a root rotation needs the root key, which is kept offline; ` +
        'rotating an offline root is not supported yet (docs/operations.md)',
      { details: { operation: 'a root rotation' } },
    );
  }
  return { ...state, next: await makeRoot(profile, now, true) };
}

/** Step 2: the next root issues (fresh intermediate); the old one stays published as previous. */
export async function activateNextRoot(state: CaState, profile: CaProfile, now: number): Promise<CaState> {
  const next = state.next;
  if (!next) throw rotationState(profile, 'activateNextRoot', 'no next root (call beginRootRotation)');
  const alive = state.retired.filter((r) => r.certificate.info.notAfter.getTime() > now);
  return {
    ...state,
    root: next,
    intermediate: await makeIntermediate(profile, next, now),
    next: null,
    previous: rootSigner(state, profile, 'a root rotation', ''),
    retired: [...alive, state.intermediate],
  };
}

/**
 * Step 3: the previous root goes, with the intermediates it signed (their leaves no longer
 * verify anywhere, so nothing needs their CRLs).
 */
export function finishRootRotation(state: CaState, profile: CaProfile): CaState {
  const previous = state.previous;
  if (!previous)
    throw rotationState(profile, 'finishRootRotation', 'no previous root (call activateNextRoot)');
  const rootKeyId = state.root.certificate.info.subjectKeyId;
  return {
    ...state,
    previous: null,
    retired: state.retired.filter((r) => r.certificate.info.authorityKeyId === rootKeyId),
  };
}
