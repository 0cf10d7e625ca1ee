/**
 * What on-demand issuance reports: which names were allowed, denied (and why), ordered, obtained
 * or adopted, and which failed. The same facts are kept as counters (`counts`) for metrics. Events
 * carry names, reasons and error codes, never key material.
 */

export type DenyReason =
  /** Not a DNS name a certificate can be ordered for (`INVALID_NAME`). */
  | 'invalid-name'
  /** The decision function said no. */
  | 'decided-no'
  /** Said no recently; remembered, the decision function was not asked again. */
  | 'denied-cached'
  /** The decision function did not answer within `limits.decideTimeoutMs`. */
  | 'decide-timeout'
  /** The decision function threw or rejected. */
  | 'decide-error'
  /** A recent order for the name failed; it waits its backoff. */
  | 'backoff'
  | 'domain-budget'
  | 'global-budget'
  /** Too many orders already waiting for a slot. */
  | 'queue-full';

export type OnDemandEvent =
  | { type: 'allowed'; name: string; clientIp?: string }
  | { type: 'denied'; name: string; reason: DenyReason; clientIp?: string; retryAt?: number }
  | { type: 'ordered'; name: string; renewal: boolean }
  | { type: 'obtained'; name: string; serial: string; ms: number }
  /** Another replica (or an earlier run) stored it: loaded from the store instead of ordered. */
  | { type: 'loaded'; name: string; serial: string; waitedForLock: boolean }
  | { type: 'failed'; name: string; code: string; retryAt: number }
  /** Not served for `forgetAfterMs`: dropped from memory and the store. */
  | { type: 'forgotten'; name: string };

export type OnDemandListener = (event: OnDemandEvent) => void;

export interface OnDemandCounts {
  allowed: number;
  denied: Record<DenyReason, number>;
  ordered: number;
  obtained: number;
  loaded: number;
  failed: number;
  forgotten: number;
}

const REASONS: readonly DenyReason[] = [
  'invalid-name',
  'decided-no',
  'denied-cached',
  'decide-timeout',
  'decide-error',
  'backoff',
  'domain-budget',
  'global-budget',
  'queue-full',
];

export class OnDemandEvents {
  readonly #listeners = new Set<OnDemandListener>();
  readonly counts: OnDemandCounts = {
    allowed: 0,
    denied: Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<DenyReason, number>,
    ordered: 0,
    obtained: 0,
    loaded: 0,
    failed: 0,
    forgotten: 0,
  };

  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  on(listener: OnDemandListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(event: OnDemandEvent): void {
    if (event.type === 'denied') this.counts.denied[event.reason]++;
    else this.counts[event.type]++;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not turn into a failed handshake.
        this.onError(error);
      }
    }
  }
}
