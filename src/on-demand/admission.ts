/**
 * Admission control: whether an unknown name may get a certificate, checked before anything is
 * ordered, cheapest check first so that a flood of names nobody wants costs little:
 *
 * 1. the name must be a DNS name a certificate can be ordered for (`INVALID_NAME` otherwise);
 * 2. a name denied recently is refused from memory, without asking again;
 * 3. a name whose order failed waits its backoff;
 * 4. the decision function, bounded by `limits.decideTimeoutMs` (a throw or a timeout is "no");
 *
 * and only when an order is really about to be placed (nothing in memory or the store):
 *
 * 5. the per-registered-domain and global budgets over their sliding windows;
 * 6. a slot among `limits.concurrentOrders`, waiting in a bounded line.
 */
import type { Clock } from '../clock.js';
import { parseName } from '../crypto/names.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import { type BudgetVerdict, OrderBudgets } from './budgets.js';
import type { DenyReason, OnDemandEvents } from './events.js';
import type { ResolvedLimits } from './limits.js';
import { ExpiringNames, FailureBackoff } from './name-memory.js';
import { OrderSlots } from './slots.js';

/** What is known about the connection asking for a name. */
export interface HandshakeHello {
  /** The client's address, as the server socket sees it. */
  clientIp?: string;
  /** The SNI as the client sent it (before normalisation). */
  serverName?: string;
  /** The client's ALPN protocols, when the server knows them before choosing a certificate. */
  alpn?: readonly string[];
}

/**
 * Whether `name` (normalised: lower case, A-labels, no trailing dot) may get a certificate.
 * Sync or async; a throw, a rejection or no answer within the timeout means no. `signal` aborts
 * at the timeout, for a function that makes a request of its own.
 */
export type DecideFunction = (
  name: string,
  info: HandshakeHello & { signal: AbortSignal },
) => boolean | Promise<boolean>;

export type Denial = { ok: false; reason: DenyReason; retryAt?: number; error?: CertkeeperError };
export type Admitted = { ok: true; name: string };

export class Admission {
  readonly budgets: OrderBudgets;
  readonly slots: OrderSlots;
  readonly #denied: ExpiringNames<true>;
  readonly #failures: FailureBackoff;

  constructor(
    private readonly decide: DecideFunction,
    private readonly limits: ResolvedLimits,
    private readonly clock: Clock,
    private readonly events: OnDemandEvents,
  ) {
    this.budgets = new OrderBudgets(limits);
    this.slots = new OrderSlots(limits.concurrentOrders, limits.queuedOrders);
    this.#denied = new ExpiringNames(limits.deniedMax);
    this.#failures = new FailureBackoff(
      limits.failedMax,
      limits.failureBackoffMs,
      limits.failureBackoffMaxMs,
    );
  }

  /** Steps 1–4. Never throws: every problem is a denial (and an event). */
  async admit(rawName: string, hello: HandshakeHello = {}): Promise<Admitted | Denial> {
    let name: string;
    try {
      name = onDemandName(rawName);
    } catch (error) {
      // The raw input is shown escaped and cut short: it is attacker-chosen and may reach logs.
      const denial = this.#deny(JSON.stringify(String(rawName).slice(0, 80)), 'invalid-name', hello);
      return { ...denial, error: error as CertkeeperError };
    }
    const now = this.clock.now();
    if (this.#denied.get(name, now)) return this.#deny(name, 'denied-cached', hello);
    const failing = this.#failures.blocked(name, now);
    if (failing) return this.#deny(name, 'backoff', hello, failing.retryAt);
    const verdict = await this.#ask(name, hello);
    if (verdict !== true) {
      this.#denied.set(name, true, this.clock.now() + this.limits.deniedTtlMs);
      return this.#deny(name, verdict, hello);
    }
    this.events.emit({ type: 'allowed', name, clientIp: hello.clientIp });
    return { ok: true, name };
  }

  /**
   * Step 5 without counting, before the order lock is taken: a name out of budget costs no lock.
   * Returns a denial, or null when an order would fit now.
   */
  outOfBudget(name: string): Denial | null {
    const now = this.clock.now();
    const budget = this.budgets.check(name, now);
    return budget.ok ? null : this.#overBudget(name, budget, now);
  }

  /**
   * Steps 5–6, right before an order: counts the order against the budgets and waits for a slot.
   * Resolves to the slot's release function, or a denial.
   */
  async beginOrder(name: string, signal: AbortSignal): Promise<(() => void) | Denial> {
    const now = this.clock.now();
    const budget = this.budgets.take(name, now);
    if (!budget.ok) return this.#overBudget(name, budget, now);
    const release = await this.slots.acquire(signal);
    // Refused by a full line, or the handshake gave up while waiting: no order was placed, but the
    // budget stays counted; being conservative here is what keeps a flood inside the CA's limits.
    if (!release) return this.#deny(name, 'queue-full', {});
    return release;
  }

  /** Records a failed order; the name backs off before it may order again. */
  failed(name: string, error: unknown): number {
    const code = isCertkeeperError(error) ? error.code : 'ISSUER_FAILED';
    const retryAt = this.#failures.failed(name, code, this.clock.now());
    this.events.emit({ type: 'failed', name, code, retryAt });
    return retryAt;
  }

  succeeded(name: string): void {
    this.#failures.succeeded(name);
  }

  /** Sizes of the bounded memories (for tests and the status snapshot). */
  get sizes(): { denied: number; failed: number; queued: number; running: number } {
    return {
      denied: this.#denied.size,
      failed: this.#failures.size,
      queued: this.slots.waiting,
      running: this.slots.running,
    };
  }

  async #ask(name: string, hello: HandshakeHello): Promise<true | DenyReason> {
    const controller = new AbortController();
    let timer: unknown;
    const timeout = new Promise<'decide-timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => {
        controller.abort(new CertkeeperError('ISSUER_UNAVAILABLE', 'on-demand decision timed out'));
        resolve('decide-timeout');
      }, this.limits.decideTimeoutMs);
    });
    try {
      const answer = Promise.resolve().then(() => this.decide(name, { ...hello, signal: controller.signal }));
      answer.catch(() => {});
      const result = await Promise.race([answer, timeout]);
      if (result === 'decide-timeout') return result;
      return result === true ? true : 'decided-no';
    } catch {
      return 'decide-error';
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  #overBudget(name: string, budget: Exclude<BudgetVerdict, { ok: true }>, now: number): Denial {
    // Remembered like a "no" until room returns (at most deniedTtlMs), so that the name's
    // connections meanwhile do not ask the decision function again.
    this.#denied.set(name, true, Math.min(budget.retryAt, now + this.limits.deniedTtlMs));
    return this.#deny(name, budget.reason, {}, budget.retryAt);
  }

  #deny(name: string, reason: DenyReason, hello: HandshakeHello, retryAt?: number): Denial {
    this.events.emit({ type: 'denied', name, reason, clientIp: hello.clientIp, retryAt });
    return { ok: false, reason, retryAt };
  }
}

/**
 * The normalised name an on-demand certificate is ordered for. Only DNS names: SNI never carries
 * an IP address (RFC 6066), and a wildcard in SNI is not a name a client connects to.
 */
export function onDemandName(raw: string): string {
  const id = parseName(raw);
  if (id.type !== 'dns' || id.wildcard)
    throw new CertkeeperError(
      'INVALID_NAME',
      `invalid name ${JSON.stringify(id.value)}: on-demand certificates are for DNS names without wildcards`,
      { details: { reason: id.type === 'ip' ? 'ip-address' : 'wildcard' } },
    );
  return id.value;
}
