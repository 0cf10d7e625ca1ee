/**
 * Noticing, by ourselves, that a certificate we serve was revoked: each served certificate that
 * names a CRL is checked against it (revocation/checker.ts: fetched, authenticated, kept until
 * its nextUpdate), and a listed serial is handed to the manager once, which records it and
 * renews at once. With OCSP gone from the public CAs, this is how a revocation by the CA — a
 * mass-revocation event, a key reported compromised, a revocation by another replica or an
 * operator — reaches a running service before its clients start failing.
 *
 * One timer for all certificates: a pass checks every certificate whose CRL is due (the checker
 * answers the others from what it keeps, without a request), then sleeps until the earliest
 * `checkAgainAt`, within [minIntervalMs, maxIntervalMs]. A CRL that cannot be fetched or is not
 * genuine never costs a working certificate: it is logged, and asked again later.
 */
import type { Clock } from '../clock.js';
import type { ParsedCertificate } from '../crypto/inspect.js';
import { describeCause, isCertkeeperError, optionError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RevocationChecker } from '../revocation/checker.js';

/** A certificate being served: leaf first, its issuer second. */
export interface WatchedCertificate {
  id: string;
  chain: readonly ParsedCertificate[];
}

export interface RevocationWatchHost {
  /** What is being served now. */
  served(): Iterable<WatchedCertificate>;
  /** `serial` of `id` is on its CA's CRL: record it and replace it (called once per serial). */
  revoked(id: string, serial: string, reason: string): Promise<void> | void;
}

export interface RevocationWatchOptions {
  /** Shortest sleep between passes. Default 1 min. */
  minIntervalMs?: number;
  /** Longest sleep between passes. Default 6 h. */
  maxIntervalMs?: number;
}

/** The manager's `revocationCheck` option. */
export interface RevocationCheckOptions extends RevocationWatchOptions {
  /** Deadline of one CRL fetch. Default 15 s. */
  timeoutMs?: number;
  /** Largest CRL accepted. Default 16 MiB. */
  maxBytes?: number;
  /**
   * After a certificate found revoked was replaced, connections of attached servers still using
   * it are closed gracefully; those still open this long after are destroyed. Default 10 s.
   */
  retireBoundMs?: number;
}

const REVOCATION_OPTIONS = ['minIntervalMs', 'maxIntervalMs', 'timeoutMs', 'maxBytes', 'retireBoundMs'];

/** Checks the `revocationCheck` option: `false` turns the check off; default on. */
export function resolveRevocationCheck(input: unknown, path: string): RevocationCheckOptions | false {
  if (input === false) return false;
  if (input === undefined || input === true) return {};
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw optionError(path, 'must be false, true or an object');
  for (const [key, value] of Object.entries(input)) {
    if (!REVOCATION_OPTIONS.includes(key))
      throw optionError(`${path}.${key}`, `is not an option (known: ${REVOCATION_OPTIONS.join(', ')})`);
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0))
      throw optionError(`${path}.${key}`, 'must be a number > 0');
  }
  return input as RevocationCheckOptions;
}

export class RevocationWatch {
  readonly #checker: RevocationChecker;
  readonly #host: RevocationWatchHost;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #min: number;
  readonly #max: number;
  /** Serials already handed over, so a CRL seen again does not renew twice. */
  readonly #reported = new Set<string>();
  #timer: unknown;
  #pass: Promise<void> | undefined;
  #abort = new AbortController();
  #running = false;

  constructor(
    checker: RevocationChecker,
    host: RevocationWatchHost,
    clock: Clock,
    logger: Logger,
    options: RevocationWatchOptions = {},
  ) {
    this.#checker = checker;
    this.#host = host;
    this.#clock = clock;
    this.#logger = logger;
    this.#min = options.minIntervalMs ?? 60_000;
    this.#max = Math.max(options.maxIntervalMs ?? 6 * 3_600_000, this.#min);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#arm(0, true);
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
  }

  /** One pass now (also what the timer runs); resolves when every certificate was checked. */
  check(): Promise<void> {
    this.#pass ??= this.#run().finally(() => {
      this.#pass = undefined;
    });
    return this.#pass;
  }

  async #run(): Promise<void> {
    let next = this.#clock.now() + this.#max;
    for (const { id, chain } of [...this.#host.served()]) {
      const [leaf, issuer] = chain;
      if (!leaf || !issuer || !this.#running) continue;
      try {
        const result = await this.#checker.check(leaf, issuer, this.#abort.signal);
        if (!result) continue;
        next = Math.min(next, result.checkAgainAt);
        const serial = leaf.info.serialNumber;
        if (result.status === 'revoked' && !this.#reported.has(serial)) {
          this.#reported.add(serial);
          this.#logger.warn('certificate is revoked by its CA; replacing it', {
            id,
            serial,
            reason: result.reason,
            crl: result.url,
          });
          await this.#host.revoked(id, serial, result.reason);
        } else if (result.status === 'unknown') {
          this.#logger.info('the CRL of a certificate is out of date', { id, crl: result.url });
        }
      } catch (error) {
        next = Math.min(next, this.#clock.now() + this.#min);
        this.#logger.warn('revocation check failed', {
          id,
          code: isCertkeeperError(error) ? error.code : undefined,
          error: describeCause(error),
        });
      }
    }
    if (this.#running) this.#arm(next - this.#clock.now());
  }

  #arm(delayMs: number, now = false): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    const delay = now ? 0 : Math.min(Math.max(delayMs, this.#min), this.#max);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.check();
    }, delay);
  }
}
