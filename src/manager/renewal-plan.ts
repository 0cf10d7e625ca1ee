/**
 * When one managed certificate is next due, and what its attempts so far came to: the renewal
 * time of the served generation (jitter drawn once per generation, moved into an ARI window when
 * the issuer suggests one), the retry after a failure with the failures counted, and the expiry
 * warnings already announced. Part of a `ManagedCertificate`'s state: only it holds one, and
 * only it calls the methods that change it.
 */
import { type CertkeeperError, describeCause, type ErrorCode } from '../errors.js';
import type { IssuerContext, RenewalWindowSource } from '../issuers/issuer.js';
import type { Logger } from '../logger.js';
import type { ObtainReason } from './events.js';
import { type RenewalPolicy, renewalTime, timeInWindow, windowRefreshTime } from './policy.js';
import type { Generation } from './records.js';
import type { Issuance } from './status.js';
import { expiryWarnings } from './warnings.js';

type Validity = { notBefore: Date | string; notAfter: Date | string };

export class RenewalPlan {
  readonly #policy: RenewalPolicy;
  /** Drawn once per generation: jitter and position in an ARI window. */
  #sample = Math.random();
  /** The fingerprint `sample` was drawn for. */
  #sampleFor?: string;
  #renewAt?: number;
  /** When to ask the issuer for its renewal window again (ARI Retry-After). */
  #windowRefreshAt?: number;
  /** Expiry thresholds announced for the served generation. */
  #warned = new Set<number>();
  #retryAt?: number;
  /**
   * The fingerprint served when the failure that set `retryAt` happened (null: nothing was).
   * Once another certificate is served (adopted from the store), that retry is void.
   */
  #retryFor?: string | null;
  #failures = 0;
  #lastError?: CertkeeperError;
  #lastIssuance: Issuance | null = null;
  /**
   * The last attempt failed with an error retrying cannot fix, and nothing has changed since
   * (no new attempt, no server started listening): `ready()` gives up on it at once.
   */
  #blocked?: CertkeeperError;

  constructor(policy: RenewalPolicy) {
    this.#policy = policy;
  }

  get sample(): number {
    return this.#sample;
  }
  get failures(): number {
    return this.#failures;
  }
  get lastError(): CertkeeperError | undefined {
    return this.#lastError;
  }
  get lastIssuance(): Issuance | null {
    return this.#lastIssuance;
  }
  get blocked(): CertkeeperError | undefined {
    return this.#blocked;
  }

  /** Renewal time for a generation; the jitter sample is drawn once per generation. */
  plan(fingerprint: string, validity: Validity): void {
    if (this.#sampleFor !== fingerprint) {
      this.#sample = Math.random();
      this.#sampleFor = fingerprint;
      this.#warned = new Set();
      this.#windowRefreshAt = undefined;
    }
    const dates = { notBefore: new Date(validity.notBefore), notAfter: new Date(validity.notAfter) };
    this.#renewAt = renewalTime(dates, this.#policy, this.#sample);
  }

  /** Renew at `at` (a replaced configuration, an ARI window); undefined: nothing to renew. */
  renewAt(at: number | undefined): void {
    this.#renewAt = at;
  }

  /** Ask the issuer for its renewal window at `at`. */
  refreshWindowAt(at: number | undefined): void {
    this.#windowRefreshAt = at;
  }

  /** Whether the renewal window is due at `now` (it is then no longer planned). */
  takeWindowRefresh(now: number): boolean {
    if (this.#windowRefreshAt === undefined || this.#windowRefreshAt > now) return false;
    this.#windowRefreshAt = undefined;
    return true;
  }

  /** An attempt begins, or what blocked the last one changed: ready() waits for the next. */
  unblock(): void {
    this.#blocked = undefined;
  }

  /**
   * The last attempt failed with `code` and what caused it changed: retry at `at` (the failures
   * counted so far kept), and ready() waits for that attempt. Returns whether it did.
   */
  retryAfter(code: ErrorCode, at: number): boolean {
    if (this.#lastError?.code !== code) return false;
    this.#blocked = undefined;
    this.#retryAt = at;
    return true;
  }

  /** An attempt ended well: `issuance` when this replica obtained the certificate (not an adoption). */
  succeeded(issuance?: Issuance | null): void {
    if (issuance) this.#lastIssuance = issuance;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#blocked = undefined;
    this.#retryAt = undefined;
    this.#retryFor = undefined;
  }

  /** Counts a failed attempt, made while `served` was served; the next comes at `retryAt`. */
  failed(failure: CertkeeperError, retryable: boolean, retryAt: number, served: string | null): void {
    this.#failures++;
    this.#lastError = failure;
    this.#blocked = retryable ? undefined : failure;
    this.#retryAt = retryAt;
    this.#retryFor = served;
  }

  /**
   * Forgets a pending retry that was for another certificate than the one served now (adopted
   * from the store after a failure), with the failures it counted: it would order a certificate
   * the store already gave us. The caller skips this while an attempt runs (a rollback briefly
   * installs another certificate). Returns whether it did.
   */
  dropVoidRetry(served: string | null): boolean {
    if (this.#retryAt === undefined || this.#retryFor === undefined || served === this.#retryFor)
      return false;
    this.#retryAt = undefined;
    this.#retryFor = undefined;
    this.#failures = 0;
    this.#lastError = undefined;
    return true;
  }

  /** When the next attempt is due: a pending retry, else the renewal time, else now (nothing served). */
  due(now: number, served: boolean): number {
    const due = this.#retryAt ?? (served && this.#renewAt !== undefined ? this.#renewAt : now);
    return Number.isFinite(due) ? due : now;
  }

  /** Why an attempt is due at `now` (what is served: `facts`), or undefined when none is. */
  attemptDue(now: number, facts: { notAfter: Date } | undefined): ObtainReason | undefined {
    if (this.due(now, facts !== undefined) > now) return undefined;
    if (!facts) return 'missing';
    if (this.#retryAt !== undefined) return 'retry';
    return facts.notAfter.getTime() <= now ? 'expired' : 'renewal';
  }

  /** When the next attempt is planned, if it is known here. */
  nextAttempt(served: boolean): number | undefined {
    if (this.#retryAt !== undefined) return this.#retryAt;
    return served ? this.#renewAt : undefined;
  }

  /** The next wake: the next attempt, expiry warning or ARI refresh; never an Invalid Date. */
  nextWake(now: number, facts: { notBefore: Date; notAfter: Date } | undefined): number {
    let next = this.due(now, facts !== undefined);
    if (this.#windowRefreshAt !== undefined) next = Math.min(next, this.#windowRefreshAt);
    for (const warning of expiryWarnings(facts, this.#policy))
      if (!this.#warned.has(warning.threshold)) next = Math.min(next, warning.at);
    return Number.isFinite(next) ? next : now;
  }

  /** The most severe expiry threshold newly crossed at `now` (milder ones are marked seen too). */
  crossedWarning(now: number, facts: { notBefore: Date; notAfter: Date } | undefined): number | undefined {
    const crossed = expiryWarnings(facts, this.#policy).filter(
      (w) => w.at <= now && !this.#warned.has(w.threshold),
    );
    if (crossed.length === 0) return undefined;
    for (const w of crossed) this.#warned.add(w.threshold);
    return Math.min(...crossed.map((w) => w.threshold));
  }
}

/**
 * Asks the issuer for a suggested renewal window (ACME ARI): when to renew in it and when to ask
 * again. What the CA says is bounded (policy.ts): a window that is not one is ignored (undefined),
 * renewal never moves past 9/10 of the lifetime, the next refresh comes within [1 minute, 1 day].
 * An issuer that cannot answer is asked again in an hour; the lifetime rule stays in force.
 */
export async function askWindow(
  source: RenewalWindowSource,
  generation: Generation,
  context: IssuerContext,
  sample: number,
  options: { policy: RenewalPolicy; logger: Logger; clock: { now(): number } },
  id: string,
): Promise<{ renewAt?: number; refreshAt: number | undefined } | undefined> {
  const { policy, logger, clock } = options;
  try {
    const window = await source.renewalWindow({ ...generation.info, chainPem: generation.chainPem }, context);
    if (!window) return undefined;
    const renewAt = timeInWindow(window, sample, generation.info, policy);
    if (renewAt === undefined) {
      logger.warn('the issuer suggested a renewal window that is not one; ignored', {
        id,
        issuer: generation.issuer,
      });
      return undefined;
    }
    return { renewAt, refreshAt: windowRefreshTime(window.refreshAt, clock.now()) };
  } catch (error) {
    logger.debug('renewal window unavailable', { id, error: describeCause(error) });
    return { refreshAt: clock.now() + 3_600_000 };
  }
}
