/**
 * Issuer fallback with a memory: which configured issuers are cooling down after the CA itself
 * failed (down, timing out, rate limiting the account), so the next attempts — of any certificate —
 * go to the next issuer at once instead of waiting on a dead CA first.
 *
 * Only failures that say something about the CA count: ISSUER_UNAVAILABLE (no answer, 5xx) and
 * RATE_LIMITED. A refusal of this one certificate (a name the CA will not issue for, a failed
 * challenge) says nothing about the CA and leaves it in the rotation.
 *
 * Cooling down reorders, it never removes: an issuer in its cooldown is tried after every other
 * one, so an attempt still reaches it when all the others fail too, and a certificate is never
 * left without an issuer to try. Order is restored as each cooldown ends, so a certificate that
 * came from a fallback goes back to the first issuer at its next renewal.
 *
 * The length doubles with each consecutive failure from `baseMs` up to `maxMs`, with ±20 %
 * jitter so that a fleet's replicas do not come back to a recovering CA in the same second; a
 * CA's own Retry-After is honoured when it is longer (bounded by `maxMs`). A success clears it.
 */
import type { Clock } from '../clock.js';
import { type CertkeeperError, isCertkeeperError, optionError } from '../errors.js';

export interface CooldownOptions {
  /** First cooldown after a failure of the CA. Default 60 s. */
  baseMs?: number;
  /** Longest cooldown. Default 1 h. */
  maxMs?: number;
  /** 0..1 fraction added or taken at random. Default 0.2. */
  jitter?: number;
  /** Source of randomness in [0, 1): injectable for tests. */
  random?: () => number;
}

interface Entry {
  failures: number;
  until: number;
  code: string;
}

/** The state of one issuer, as status and events show it. */
export interface IssuerCooldownState {
  issuer: string;
  /** Consecutive failures of the CA. */
  failures: number;
  /** When it is tried first again (epoch ms). */
  until: number;
  /** The code of the last failure. */
  code: string;
}

/** Checks `issuerCooldown` options (`path` names them in errors). */
export function validateCooldownOptions(input: unknown, path: string): CooldownOptions {
  if (input === undefined) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw optionError(path, 'must be an object');
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!['baseMs', 'maxMs', 'jitter', 'random'].includes(key))
      throw optionError(`${path}.${key}`, 'is not an option (known: baseMs, maxMs, jitter)');
  }
  const positive = (key: string) => {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw optionError(`${path}.${key}`, 'must be a number of milliseconds > 0');
  };
  positive('baseMs');
  positive('maxMs');
  if (o.jitter !== undefined && !(typeof o.jitter === 'number' && o.jitter >= 0 && o.jitter <= 1))
    throw optionError(`${path}.jitter`, 'must be a number in 0..1');
  if (o.random !== undefined && typeof o.random !== 'function')
    throw optionError(`${path}.random`, 'must be a function');
  return o as CooldownOptions;
}

const CA_FAILURES = new Set(['ISSUER_UNAVAILABLE', 'RATE_LIMITED']);

/** Does this error say the CA is unavailable to us (rather than refusing one certificate)? */
export function isCaFailure(error: unknown): error is CertkeeperError {
  return isCertkeeperError(error) && CA_FAILURES.has(error.code);
}

export class IssuerCooldowns {
  readonly #entries = new Map<string, Entry>();
  readonly #clock: Clock;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(clock: Clock, options: CooldownOptions = {}) {
    this.#clock = clock;
    this.#baseMs = options.baseMs ?? 60_000;
    this.#maxMs = Math.max(options.maxMs ?? 3_600_000, this.#baseMs);
    this.#jitter = Math.min(Math.max(options.jitter ?? 0.2, 0), 1);
    this.#random = options.random ?? Math.random;
  }

  /**
   * `items` in the order to try them: those whose issuer is not cooling down in their configured
   * order, then those that are, soonest back first.
   */
  order<T>(items: readonly T[], idOf: (item: T) => string): T[] {
    const now = this.#clock.now();
    const ready: T[] = [];
    const cooling: { item: T; until: number }[] = [];
    for (const item of items) {
      const entry = this.#entries.get(idOf(item));
      if (entry && entry.until > now) cooling.push({ item, until: entry.until });
      else ready.push(item);
    }
    cooling.sort((a, b) => a.until - b.until);
    return [...ready, ...cooling.map((c) => c.item)];
  }

  /** Record an issuer's failure; returns its new state when the failure was the CA's, else null. */
  failed(issuer: string, error: unknown): IssuerCooldownState | null {
    if (!isCaFailure(error)) return null;
    const failures = (this.#entries.get(issuer)?.failures ?? 0) + 1;
    const exponential = Math.min(this.#baseMs * 2 ** Math.min(failures - 1, 30), this.#maxMs);
    const spread = exponential * this.#jitter * (2 * this.#random() - 1);
    const retryAfter = error.details.retryAfterMs;
    const asked = typeof retryAfter === 'number' && retryAfter > 0 ? Math.min(retryAfter, this.#maxMs) : 0;
    const until = this.#clock.now() + Math.max(Math.round(exponential + spread), asked);
    this.#entries.set(issuer, { failures, until, code: error.code });
    return { issuer, failures, until, code: error.code };
  }

  /** The CA answered with a certificate: it is first in line again. */
  succeeded(issuer: string): void {
    this.#entries.delete(issuer);
  }

  /** Issuers cooling down now. */
  states(): IssuerCooldownState[] {
    const now = this.#clock.now();
    return [...this.#entries]
      .filter(([, e]) => e.until > now)
      .map(([issuer, e]) => ({ issuer, failures: e.failures, until: e.until, code: e.code }));
  }
}
