/**
 * The embedded CA with its root offline (the production mode of an internal PKI: the root never
 * goes online). On an admin machine `certkeeper ca init` makes the root and an intermediate; the
 * root key goes to a file the operator keeps offline, and the state record holds the root
 * certificate without its key. Replicas then sign leaves with the intermediate alone. What needs
 * the root is done where its key is, through these transitions: a new intermediate
 * (`ca sign-intermediate`) and the root's CRL (`ca sign-crl`), imported into the same sealed
 * record as every other change, so its authentication covers them too.
 */

import type { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { RevocationReason } from '../issuer.js';
import { type CaProfile, makeIntermediate, makeRoot } from './authority.js';
import { signRootCrl } from './crl.js';
import type { CaState } from './state.js';
import {
  intermediateUsable,
  replaceIntermediate,
  rootOfflineError,
  signIntermediateCommand,
} from './transitions.js';

/** Default validity of a root CRL signed offline: it must outlive the interval between signings. */
export const ROOT_CRL_VALIDITY_MS = 30 * 24 * 3_600_000;

/** A new CA whose root key is returned to the caller and left out of the state. */
export async function createOffline(
  profile: CaProfile,
  now: number,
  crlValidityMs: number,
): Promise<{ state: CaState; rootKey: PrivateKey }> {
  const root = await makeRoot(profile, now, false);
  const intermediate = await makeIntermediate(profile, root, now);
  const base: CaState = {
    version: 0,
    root: { key: null, certificate: root.certificate },
    intermediate,
    next: null,
    previous: null,
    retired: [],
    revoked: [],
    rootCrl: null,
  };
  return {
    state: { ...base, rootCrl: await signRootCrl(base, root.key, now, crlValidityMs) },
    rootKey: root.key,
  };
}

/** KEY_MISMATCH unless `rootKey` is the key of the state's root (a key file of another CA). */
function checkRootKey(state: CaState, profile: CaProfile, rootKey: PrivateKey): void {
  let matches = false;
  try {
    matches = state.root.certificate.node.checkPrivateKey(rootKey.keyObject);
  } catch {
    // another key type: no match
  }
  if (!matches) {
    throw new CertkeeperError(
      'KEY_MISMATCH',
      `internal CA ${profile.name}: the given root key is not the key of this CA's root`,
    );
  }
}

/**
 * A new intermediate signed by the offline root (the old one retired, or revoked with `reason`),
 * and a fresh root CRL, since the key is at hand (a revoked intermediate must be on it).
 */
export async function signIntermediate(
  state: CaState,
  profile: CaProfile,
  rootKey: PrivateKey,
  now: number,
  options: { reason?: RevocationReason; crlValidityMs: number },
): Promise<CaState> {
  checkRootKey(state, profile, rootKey);
  const signer = { key: rootKey, certificate: state.root.certificate };
  const next = await replaceIntermediate(state, profile, now, options.reason, signer);
  return { ...next, rootCrl: await signRootCrl(next, rootKey, now, options.crlValidityMs) };
}

/** The root's CRL, signed now by the offline root key and imported into the state. */
export async function importRootCrl(
  state: CaState,
  profile: CaProfile,
  rootKey: PrivateKey,
  now: number,
  validityMs: number,
): Promise<CaState> {
  checkRootKey(state, profile, rootKey);
  return { ...state, rootCrl: await signRootCrl(state, rootKey, now, validityMs) };
}

export interface IntermediateStatus {
  /** SHA-256 fingerprint (hex). */
  fingerprint: string;
  notAfter: Date;
  /**
   * `ok`; `due` from when an online CA would renew it (10 leaf lifetimes or a third of its
   * lifetime left): with the root offline, run `certkeeper ca sign-intermediate` then; `unusable`
   * once it is expired or not valid yet (issuance fails).
   */
  state: 'ok' | 'due' | 'unusable';
}

export function intermediateStatus(state: CaState, profile: CaProfile, now: number): IntermediateStatus {
  const { info } = state.intermediate.certificate;
  const valid = info.notBefore.getTime() <= now && info.notAfter.getTime() > now;
  return {
    fingerprint: info.fingerprint256,
    notAfter: info.notAfter,
    state: !valid ? 'unusable' : intermediateUsable(state, profile, now) ? 'ok' : 'due',
  };
}

/**
 * What an issuance checks with the root offline: an unusable intermediate fails it
 * (CA_ROOT_OFFLINE); a due one logs one warning naming the command and tells the listeners, once
 * per intermediate in this process.
 */
export class DueWarnings {
  readonly #profile: CaProfile;
  readonly #issuerId: string;
  readonly #listeners = new Set<(status: IntermediateStatus) => void>();
  /** The intermediate (fingerprint) last warned about. */
  #warned: string | undefined;

  constructor(profile: CaProfile, issuerId: string) {
    this.#profile = profile;
    this.#issuerId = issuerId;
  }

  listen(listener: (status: IntermediateStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  check(state: CaState, now: number, logger: Logger): void {
    const status = intermediateStatus(state, this.#profile, now);
    const command = signIntermediateCommand(this.#profile);
    if (status.state === 'unusable') {
      throw rootOfflineError(
        this.#profile,
        'issuing (the intermediate is expired or not valid yet)',
        command,
      );
    }
    if (status.state !== 'due' || this.#warned === status.fingerprint) return;
    this.#warned = status.fingerprint;
    const notAfter = status.notAfter.toISOString();
    logger.warn(
      `internal CA ${this.#profile.name}: the intermediate expires ${notAfter} and the root is offline; run \`${command}\``,
      { issuer: this.#issuerId, notAfter, fingerprint: status.fingerprint },
    );
    for (const listener of this.#listeners) listener(status);
  }
}
