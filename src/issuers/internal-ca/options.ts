/**
 * The embedded CA's options and the shapes its rotation methods take and return, validated once
 * at construction (`option`).
 */
import type { Clock } from '../../clock.js';
import type { KeyType } from '../../crypto/keys.js';
import { optionError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type { RevocationReason } from '../issuer.js';
import type { CaState } from './state.js';

export interface InternalCAOptions {
  /** Names the CA in the store and in its subject. Default `certkeeper-internal`. */
  name?: string;
  /** Leaf lifetime. Default 24 h; at least 1 s (a minute or more outside tests). */
  lifetimeMs?: number;
  /** Default 10 years. */
  rootLifetimeMs?: number;
  /** Default 1 year; re-issued automatically when less than 10 leaf lifetimes (or 1/3) remain. */
  intermediateLifetimeMs?: number;
  /** Key type of the CA keys. Default ECDSA P-256. */
  keyType?: KeyType;
  /** `purpose` (default): serverAuth for servers, clientAuth for clients. `both`: both EKUs always. */
  extKeyUsage?: 'purpose' | 'both';
  /** Where the CA keeps its material; default: the store of the manager using it. */
  store?: Store;
  /**
   * Lease of the CA's store lock (renewed while held); after a crash, other processes wait at
   * most this long. Default: the manager's `lockTtlMs` (60 s unless set), at least 1000.
   */
  lockTtlMs?: number;
  /**
   * The time the CA dates certificates and CRLs by when a call gives none (CRLs, rotations,
   * `recreate`); issuance and revocation use their context's clock. Default: the clock of the
   * manager it is bound to (when the manager passes one), else the system clock.
   */
  clock?: Clock;
}

/**
 * Where a root rotation stands (see `beginRootRotation`):
 * `none` one root; `introduced` a next root is published beside the issuing one but signs nothing
 * yet; `activated` the new root issues, the previous one is still published until finished.
 */
export type RootRotationPhase = 'none' | 'introduced' | 'activated';

export interface RootRotationStatus {
  phase: RootRotationPhase;
  /** SHA-256 fingerprints (lowercase hex) of the issuing, next and previous roots. */
  current: string;
  next: string | null;
  previous: string | null;
}

export interface RotateIntermediateOptions {
  store?: Store;
  /**
   * Revoke the replaced intermediate for this reason (the compromise drill: `keyCompromise`).
   * The root's CRL then lists it, so verifiers using `crls()` refuse every leaf under it,
   * including any a thief of its key makes; re-issue the leaves (`manager.renewAll()`) first.
   * Without a reason the old intermediate is retired: its leaves stay valid until they expire.
   */
  reason?: RevocationReason;
  now?: number;
}

export const DEFAULT_LOCK_TTL_MS = 60_000;

export function option(condition: boolean, name: string, bound: string): void {
  if (!condition) {
    throw optionError(name, bound, 'InternalCA');
  }
}

export const isStore = (value: unknown): value is Store =>
  typeof value === 'object' && value !== null && typeof (value as Store).get === 'function';

export function status(state: CaState): RootRotationStatus {
  const current = state.root.certificate.info.fingerprint256;
  return {
    phase: state.previous ? 'activated' : state.next ? 'introduced' : 'none',
    current,
    next: state.next?.certificate.info.fingerprint256 ?? null,
    previous: state.previous?.certificate.info.fingerprint256 ?? null,
  };
}
