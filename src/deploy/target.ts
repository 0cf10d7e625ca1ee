/**
 * The deploy-target contract: where a new certificate goes after it is stored. A target makes a
 * generation current (`apply`), proves it is what clients now get (`verify`), and puts the
 * previous one back when any target's proof fails (`rollback`). The server attachment (Node
 * servers in this process) is one target; file-and-reload targets (nginx, HAProxy, Redis, ...)
 * are others. The deploy path applies to every target that serves a certificate, verifies every
 * one, and on a failure rolls back the targets its policy names — so a target never decides on
 * its own whether the fleet keeps a certificate.
 */
import type { CertificateInfo } from '../crypto/inspect.js';
import type { PrivateKey } from '../crypto/keys.js';

/** One certificate as a target receives it: the leaf, its chain and its key. */
export interface DeployableGeneration {
  /** Id of the issuer that signed it. */
  readonly issuer: string;
  /** Leaf first, then the intermediates (never the root). */
  readonly chainPem: string;
  readonly key: PrivateKey;
  /** The leaf. */
  readonly info: CertificateInfo;
  /** Leaf first, as `chainPem`. */
  readonly chain: readonly CertificateInfo[];
}

/** What a live check saw: the certificate a real client was served. */
export interface LiveCheck {
  /** The target that checked. */
  readonly target: string;
  /** Where it connected (`host:port`, a socket path). */
  readonly endpoint: string;
  /** SHA-256 of the leaf a client was served, lowercase hex. */
  readonly fingerprint256: string;
}

/** A place a managed certificate is deployed to. */
export interface DeployTarget {
  /** Stable, human-readable; appears in events, logs and errors. */
  readonly name: string;
  /** Whether this target receives certificate `id` (called often: O(1), no I/O). */
  serves(id: string): boolean;
  /**
   * Makes `generation` what this target serves for `id`. Throws a typed error (`DEPLOY_FAILED`
   * when the target itself refused, e.g. a reload command failed) and leaves the target as it
   * was, or as close to it as `rollback` can restore.
   */
  apply(id: string, generation: DeployableGeneration, signal: AbortSignal): Promise<void>;
  /**
   * Proves the target serves `generation` to a real client (a handshake that sees its
   * fingerprint), retrying within its own bound. Resolves null when there is nothing to check
   * (a server that is not listening); throws `LIVE_VERIFY_FAILED` when a client is served
   * something else.
   */
  verify(id: string, generation: DeployableGeneration, signal: AbortSignal): Promise<LiveCheck | null>;
  /**
   * Puts `previous` back after `apply` (of this or another target) led to a failed deploy;
   * `previous` is null when there was none, and the target then stops serving `id`.
   */
  rollback(id: string, previous: DeployableGeneration | null, signal: AbortSignal): Promise<void>;
  /** Releases what the target holds (watchers, sockets); idempotent. */
  close?(): Promise<void>;
}
