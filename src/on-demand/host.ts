/**
 * What the on-demand coordinator needs from whoever owns certificates (the manager, or
 * `IssuerHost` on its own): a way to order one for a name and commit it to the store, to load a
 * stored one, and to remove one. The coordinator adds admission control, single-flight,
 * cross-replica locking, the bounded memory and the in-use renewal around these three calls.
 */
import type { SecureContext } from 'node:tls';
import type { Clock } from '../clock.js';
import type { CertificateInfo } from '../crypto/inspect.js';
import type { PrivateKey } from '../crypto/keys.js';
import type { Logger } from '../logger.js';
import type { LockLease, Store } from '../store/store.js';

/** One certificate generation, as served. The manager's `Generation` has this shape. */
export interface OnDemandCertificate {
  /** Leaf first, then intermediates, PEM. */
  readonly chainPem: string;
  readonly key: PrivateKey;
  /** The leaf's facts: `serialNumber`, `notBefore`, `notAfter` are used. */
  readonly info: CertificateInfo;
}

export interface ObtainOptions {
  /** Aborted when the order is given up (order timeout, lock lost, coordinator closed). */
  signal: AbortSignal;
  /**
   * The coordinator's lease on the name's order lock: the host commits with writes fenced by it
   * (`put(key, value, { fence: lease })`), so a holder that stalled past its lease cannot
   * overwrite what the next holder stored.
   */
  lease: LockLease;
  /** The certificate being replaced, when this order renews one. */
  current?: OnDemandCertificate;
  /**
   * Call (at most once) with the certificate as soon as it is issued and validated, before the
   * commit: the waiting handshake is served at once while the commit and the lock release go on.
   */
  onIssued?(certificate: OnDemandCertificate): void;
}

export interface OnDemandHost {
  /** The store replicas share; the coordinator takes its locks and keeps its seen-records there. */
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Orders a certificate for `name` (already admitted; normalised) and commits it to the store
   * before resolving, so a replica waiting on the lock finds it with `load`. Rejects with a
   * `CertkeeperError` on failure.
   */
  obtain(name: string, options: ObtainOptions): Promise<OnDemandCertificate>;
  /**
   * The certificate the store holds for `name`, checked as the host checks anything it serves
   * from the store (key matches, covers `name`, chains to the issuer's trust anchors, not
   * expired), or null when there is none or it does not pass.
   */
  load(name: string, signal: AbortSignal): Promise<OnDemandCertificate | null>;
  /** Deletes what the store holds for `name` (called under the name's order lock). */
  remove(name: string, lease: LockLease): Promise<void>;
  /** How a certificate becomes a context; default `tls.createSecureContext({ cert, key })`. */
  secureContext?(certificate: OnDemandCertificate): SecureContext;
}
