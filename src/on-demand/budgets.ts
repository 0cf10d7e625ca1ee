/**
 * Sliding-window order budgets: one per registered domain and one global. A window keeps the
 * times of the orders it counted (never more than its budget), so an answer is exact, not an
 * approximation from buckets, and memory is bounded: the global budget caps how many orders can
 * be counted at all, hence how many domains can have an entry.
 */
import { getDomain } from 'tldts';
import type { ResolvedLimits } from './limits.js';

/**
 * The registered domain of a name (Public Suffix List, private section included, as Let's
 * Encrypt counts: `a.github.io` and `b.github.io` are two registered domains). A name with none
 * (an IP address, `localhost`, a bare suffix) is its own bucket.
 */
export function registeredDomain(name: string): string {
  const host = name.startsWith('*.') ? name.slice(2) : name;
  return getDomain(host, { allowPrivateDomains: true }) ?? host;
}

class Window {
  readonly #times: number[] = [];
  constructor(
    readonly budget: number,
    readonly spanMs: number,
  ) {}

  #prune(now: number): void {
    const from = now - this.spanMs;
    let drop = 0;
    while (drop < this.#times.length && this.#times[drop]! <= from) drop++;
    if (drop > 0) this.#times.splice(0, drop);
  }

  used(now: number): number {
    this.#prune(now);
    return this.#times.length;
  }

  hasRoom(now: number): boolean {
    return this.used(now) < this.budget;
  }

  take(now: number): void {
    this.#times.push(now);
  }

  /** When the oldest counted order leaves the window (the next room), or null with room now. */
  nextRoomAt(now: number): number | null {
    return this.hasRoom(now) ? null : this.#times[0]! + this.spanMs;
  }
}

export type BudgetVerdict =
  | { ok: true }
  | { ok: false; reason: 'domain-budget' | 'global-budget'; domain: string; retryAt: number };

export class OrderBudgets {
  readonly #limits: ResolvedLimits;
  readonly #global: Window;
  readonly #domains = new Map<string, Window>();

  constructor(limits: ResolvedLimits) {
    this.#limits = limits;
    this.#global = new Window(limits.global, limits.globalWindowMs);
  }

  /** Whether an order for `name` would fit now, without counting it. */
  check(name: string, now: number): BudgetVerdict {
    const domain = registeredDomain(name);
    const window = this.#domains.get(domain);
    if (window && !window.hasRoom(now))
      return { ok: false, reason: 'domain-budget', domain, retryAt: window.nextRoomAt(now)! };
    if (!this.#global.hasRoom(now))
      return { ok: false, reason: 'global-budget', domain, retryAt: this.#global.nextRoomAt(now)! };
    return { ok: true };
  }

  /** Counts one order for `name` when both budgets have room (check and count are one step). */
  take(name: string, now: number): BudgetVerdict {
    const verdict = this.check(name, now);
    if (!verdict.ok) return verdict;
    const domain = registeredDomain(name);
    let window = this.#domains.get(domain);
    if (!window) {
      this.#sweep(now);
      window = new Window(this.#limits.perDomain, this.#limits.perDomainWindowMs);
      this.#domains.set(domain, window);
    }
    window.take(now);
    this.#global.take(now);
    return { ok: true };
  }

  /** Orders counted now: in total and for the registered domain of `name`. */
  usage(now: number, name?: string): { global: number; domain?: number; domains: number } {
    const domain = name === undefined ? undefined : this.#domains.get(registeredDomain(name))?.used(now);
    return {
      global: this.#global.used(now),
      domain: domain ?? (name ? 0 : undefined),
      domains: this.#domains.size,
    };
  }

  /** Drops domains whose window emptied, when there are enough of them to be worth a pass. */
  #sweep(now: number): void {
    if (this.#domains.size < 256) return;
    for (const [domain, window] of this.#domains) if (window.used(now) === 0) this.#domains.delete(domain);
  }
}
