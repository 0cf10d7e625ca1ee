/**
 * certkeeper's `node:diagnostics_channel` channels: APM tools and custom instrumentation see
 * renewal attempts, deploys and live checks without a logging or metrics dependency. Names and
 * payloads are public API. Publishing costs nothing while nobody subscribes (`hasSubscribers`).
 *
 *   tracing:certkeeper:renewal:{start,end,asyncStart,asyncEnd,error}
 *                                 one attempt to obtain or renew (TracingChannel `certkeeper:renewal`);
 *                                 the context object is the same from start to asyncEnd
 *   certkeeper:deploy             a new certificate went live (swapped) or was refused/undone (rolled-back)
 *   certkeeper:live-check         the handshake to the live servers after a swap: ok or failed
 *
 * Reserved for emission points inside the issuers (not published yet):
 *   tracing:certkeeper:acme:order ACME orders (TracingChannel `certkeeper:acme:order`)
 *
 * Payloads carry the manager object (to tell managers in one process apart), ids, names,
 * serials, fingerprints, times and typed errors; never key material.
 */
import dc from 'node:diagnostics_channel';
import type { CertkeeperError } from '../errors.js';
import type { ObtainReason } from '../manager/events.js';

/** Names of the `node:diagnostics_channel` channels certkeeper publishes on (exported as `DIAGNOSTIC_CHANNELS`). */
export const CHANNELS = {
  /** TracingChannel name: subscribe with `diagnostics_channel.tracingChannel(CHANNELS.renewal)`. */
  renewal: 'certkeeper:renewal',
  deploy: 'certkeeper:deploy',
  liveCheck: 'certkeeper:live-check',
  /** Reserved (TracingChannel), not published yet. */
  acmeOrder: 'certkeeper:acme:order',
} as const;

/** The context of one renewal attempt, from `start` to `asyncEnd`. */
export interface RenewalContext {
  manager: object;
  id: string;
  names: string[];
  reason: ObtainReason;
  /** 1 for the first attempt, counting up while attempts fail. */
  attempt: number;
  /** Set on success. */
  result?: 'obtained' | 'renewed' | 'adopted';
  serial?: string;
  issuer?: string;
  notAfter?: Date;
  /** By the manager's clock, from `start` to the outcome. */
  durationMs?: number;
  /** Set on failure (published on `error` before `asyncStart`). */
  error?: CertkeeperError;
  /** When the next attempt is planned after a failure. */
  retryAt?: Date;
}

/** Published on the deploy channel after a new certificate was swapped in or rolled back. */
export interface DeployMessage {
  manager: object;
  id: string;
  outcome: 'swapped' | 'rolled-back';
  /** The new certificate (swapped), or the refused one (rolled-back; null if none was made). */
  serial: string | null;
  /** What is served now. */
  servingSerial: string | null;
  previousSerial: string | null;
  /** Attached servers that should serve it, and how many were checked by a live handshake. */
  servers?: number;
  verified?: number;
  /**
   * Apply and live check on every deploy target, in ms by the manager's clock (the `swapped`
   * event's `durationMs`). Absent from rolled-back messages.
   */
  durationMs?: number;
  /** Why it was refused or undone. */
  error?: CertkeeperError;
}

/** Published on the live-check channel after a handshake checked which certificate a server presents. */
export interface LiveCheckMessage {
  manager: object;
  id: string;
  ok: boolean;
  /** The certificate checked (ok), or null when only its fingerprint is known (failed). */
  serial: string | null;
  /** SHA-256 fingerprint expected from the live servers (failed checks). */
  expected?: string;
  servers?: number;
  verified?: number;
  error?: CertkeeperError;
}

export const renewalChannel = dc.tracingChannel<RenewalContext, RenewalContext>(CHANNELS.renewal);
export const deployChannel = dc.channel(CHANNELS.deploy);
export const liveCheckChannel = dc.channel(CHANNELS.liveCheck);
