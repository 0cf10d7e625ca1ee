/**
 * The challenge-solver contract (ACME, RFC 8555 §8). A solver makes one kind of answer
 * available where the CA will look for it, and takes it away afterwards. Answers go through the
 * store (or a DNS provider), never only through this process's memory, so any replica sharing
 * the store can answer a validation that lands on it.
 */
import type { Clock } from '../clock.js';
import type { CertkeeperError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { TlsAlpnHost } from './tls-alpn-01/registry.js';

/** The ACME challenge types certkeeper can answer. */
export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

export const CHALLENGE_TYPES: readonly ChallengeType[] = ['http-01', 'tls-alpn-01', 'dns-01'];

/**
 * What a solver gets with each call: the order's (an issuer passes its `IssuerContext` on, which
 * has these fields). A manager's context also carries `tlsAlpn`, which only TLS-ALPN-01 reads.
 */
export interface ChallengeContext {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Aborted when the attempt is given up. */
  signal: AbortSignal;
  /** Where TLS-ALPN-01 challenges are answered from, when a manager runs the order. */
  tlsAlpn?: TlsAlpnHost;
}

/** One challenge of an authorization, as handed to a `ChallengeSolver`. */
export interface ChallengeTask {
  type: ChallengeType;
  /** The authorization's identifier. For a wildcard order this is the base name (no `*.`). */
  identifier: { type: 'dns' | 'ip'; value: string };
  wildcard: boolean;
  token: string;
  /** `token.thumbprint(accountKey)`: what HTTP-01 serves; TLS-ALPN-01 and DNS-01 serve its SHA-256. */
  keyAuthorization: string;
}

/** Answers one type of ACME challenge: publishes the proof, then removes it. */
export interface ChallengeSolver {
  readonly type: ChallengeType;
  /**
   * Whether this solver can answer for an identifier now (HTTP-01 and TLS-ALPN-01 cannot do
   * wildcards; TLS-ALPN-01 needs an attached server that listens). `context` is the order's.
   */
  supports(identifier: ChallengeTask['identifier'], wildcard: boolean, context?: ChallengeContext): boolean;
  /**
   * Why this solver cannot answer now although it could for this identifier: a typed error that
   * names the fix, used when no configured solver can answer.
   */
  unavailable?(
    identifier: ChallengeTask['identifier'],
    wildcard: boolean,
    context: ChallengeContext,
  ): CertkeeperError | undefined;
  /**
   * Makes the answer available. Resolves when the CA may start validating (for DNS-01: after the
   * record is visible at the configured resolvers). Must tolerate the CA validating several times
   * concurrently (Pebble makes three attempts).
   */
  present(task: ChallengeTask, context: ChallengeContext): Promise<void>;
  /** Removes the answer. Called whatever the outcome; must not throw for an answer already gone. */
  cleanup(task: ChallengeTask, context: ChallengeContext): Promise<void>;
}
