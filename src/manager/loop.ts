/**
 * The loop: one Scheduler wakes for the next due certificate (renewal, retry, expiry warning,
 * ARI refresh) and starts an attempt (attempt.ts), one at a time per certificate. Everything a CA
 * says about timing is bounded on the way in (policy.ts): a retry never lands past a quarter of
 * the remaining lifetime, a renewal window never past 9/10 of it, never an Invalid Date.
 */
import { type CertkeeperError, describeCause } from '../errors.js';
import { attempt } from './attempt.js';
import type { ManagerCore } from './core.js';
import type { ObtainReason } from './events.js';
import { timeInWindow, windowRefreshTime } from './policy.js';
import type { Generation } from './records.js';
import { Scheduler } from './scheduler.js';
import { type CertState, dropVoidRetry, servedFacts } from './state.js';
import { emitExpiryWarnings, expiryWarnings } from './warnings.js';

export interface LoopHost {
  readonly core: ManagerCore;
  /** The state of a managed certificate, or undefined once it is no longer managed. */
  state(id: string): CertState | undefined;
  /** Background work that uses the store: stop() waits for it. */
  track(work: Promise<unknown>): void;
}

export class RenewalLoop {
  readonly #host: LoopHost;
  readonly #scheduler: Scheduler;

  constructor(host: LoopHost) {
    this.#host = host;
    const { clock, concurrency } = host.core.options;
    this.#scheduler = new Scheduler(clock, (id) => this.#tick(id), { concurrency });
  }

  start(): void {
    this.#scheduler.start();
  }

  stop(): void {
    this.#scheduler.stop();
  }

  delete(id: string): void {
    this.#scheduler.delete(id);
  }

  /** When the next attempt is planned (not the next wake: a warning or ARI refresh may come first). */
  nextAttempt(state: CertState): number | undefined {
    if (state.retryAt !== undefined) return state.retryAt;
    if (servedFacts(state) && state.renewAt !== undefined) return state.renewAt;
    return this.#scheduler.dueAt(state.cert.id);
  }

  reschedule(state: CertState): void {
    if (state.removed || this.#host.core.stopped()) return;
    dropVoidRetry(state);
    const { clock, policy } = this.#host.core.options;
    const now = clock.now();
    let next = this.#due(state, now);
    if (state.windowRefreshAt !== undefined) next = Math.min(next, state.windowRefreshAt);
    for (const warning of expiryWarnings(state, policy))
      if (!state.warned.has(warning.threshold)) next = Math.min(next, warning.at);
    // Whatever a stored pointer or an issuer said, never an Invalid Date: when in doubt, now.
    this.#scheduler.set(state.cert.id, Number.isFinite(next) ? next : now);
  }

  /** Resolves with the attempt's failure, or undefined once a new certificate is served. */
  obtain(state: CertState, reason: ObtainReason): Promise<CertkeeperError | undefined> {
    if (state.inflight) {
      if (reason !== 'forced') return state.inflight;
      // A forced renewal must produce a new certificate, not ride on an attempt that began
      // earlier: queue one more attempt after it (several callers share that one).
      state.queuedForced ??= state.inflight.then(() => {
        state.queuedForced = undefined;
        return this.obtain(state, 'forced');
      });
      return state.queuedForced;
    }
    state.inflight = attempt(this.#host.core, state, reason).finally(() => {
      state.inflight = undefined;
      this.reschedule(state);
    });
    return state.inflight;
  }

  /**
   * Asks the issuer for a suggested renewal window (ACME ARI) and moves the renewal into it. What
   * the CA says is bounded (policy.ts): a window that is not one is ignored, renewal never moves
   * past 9/10 of the lifetime, the next refresh comes within [1 minute, 1 day].
   */
  refreshWindow(state: CertState, generation: Generation): void {
    const { core } = this.#host;
    const { capabilities, clock, policy, logger } = core.options;
    const source = capabilities.get(generation.issuer)?.window;
    if (!source || core.stopped()) return;
    const refresh = async () => {
      try {
        const window = await source.renewalWindow(
          { ...generation.info, chainPem: generation.chainPem },
          core.context(core.signal),
        );
        if (!window || state.current !== generation) return;
        const at = timeInWindow(window, state.sample, generation.info, policy);
        if (at === undefined) {
          logger.warn('the issuer suggested a renewal window that is not one; ignored', {
            id: state.cert.id,
            issuer: generation.issuer,
          });
          return;
        }
        state.renewAt = at;
        state.windowRefreshAt = windowRefreshTime(window.refreshAt, clock.now());
        this.reschedule(state);
      } catch (error) {
        if (state.current !== generation) return;
        // The lifetime rule stays in force; ask again later.
        state.windowRefreshAt = clock.now() + 3_600_000;
        this.reschedule(state);
        logger.debug('renewal window unavailable', { id: state.cert.id, error: describeCause(error) });
      }
    };
    this.#host.track(refresh());
  }

  /** When the next attempt is due: a pending retry, else the renewal time, else now (nothing served). */
  #due(state: CertState, now: number): number {
    const known = servedFacts(state) !== undefined;
    const due = state.retryAt ?? (known && state.renewAt !== undefined ? state.renewAt : now);
    return Number.isFinite(due) ? due : now;
  }

  async #tick(id: string): Promise<void> {
    const state = this.#host.state(id);
    if (!state) return;
    dropVoidRetry(state);
    const now = this.#host.core.options.clock.now();
    emitExpiryWarnings(this.#host.core, state, now);
    if (state.current && state.windowRefreshAt !== undefined && state.windowRefreshAt <= now) {
      state.windowRefreshAt = undefined;
      this.refreshWindow(state, state.current);
    }
    const facts = servedFacts(state);
    if (this.#due(state, now) > now) {
      this.reschedule(state);
      return;
    }
    const reason: ObtainReason = !facts
      ? 'missing'
      : state.retryAt !== undefined
        ? 'retry'
        : facts.notAfter.getTime() <= now
          ? 'expired'
          : 'renewal';
    await this.obtain(state, reason);
  }
}
