/**
 * One member per generation of a client identity (an https.Agent, an undici Agent, a gRPC
 * channel), with one lifecycle for all three, on the model of undici's DispatcherBase:
 *
 *   acquire(key)   the member of generation `key`, built on first use; the member it replaces is
 *                  retired. After close() or destroy() it throws AGENT_CLOSED.
 *   retire         the member drains (its own `drain`: in-flight work finishes, nothing new
 *                  starts); whatever is left after `graceMs` is destroyed (its own `destroy`).
 *   close()        stops new work and retires the current member; resolves once every member
 *                  has drained or been destroyed. Idempotent: every call gets the same promise.
 *   destroy()      stops new work and destroys every member now. Idempotent; a close() still
 *                  pending resolves when the destruction is done, a close() after it too.
 *
 * The pool is the one owner of the members and of their timers; what a member needs to drain or
 * be destroyed is the caller's (`drain`, `destroy`), what happens when is the pool's.
 */
import { CertkeeperError } from '../errors.js';

export interface GenerationPoolOptions<M> {
  /** Names the pool in AGENT_CLOSED errors: "the rotating agent". */
  name: string;
  /** How long a retired member may drain before it is destroyed. */
  graceMs: number;
  /**
   * Ends a retired member gracefully: nothing new starts on it, and the promise resolves once its
   * last piece of work has ended and it is closed. `forced` aborts when the pool destroys the
   * member instead (grace over, or destroy()): stop waiting then.
   */
  drain(member: M, forced: AbortSignal): Promise<void>;
  /** Ends a member now, aborting its work. Called at most once per member. */
  destroy(member: M, reason: Error | null): Promise<void> | void;
}

interface Retired {
  /** Settles once the member is closed, drained or destroyed. */
  readonly done: Promise<void>;
  /** Destroys the member now (idempotent); resolves when that is done. */
  destroy(reason: Error | null): Promise<void>;
}

export class GenerationPool<M> {
  readonly #options: GenerationPoolOptions<M>;
  readonly #retired = new Set<Retired>();
  readonly #stopped = new AbortController();
  #current: { key: string; member: M } | undefined;
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;

  constructor(options: GenerationPoolOptions<M>) {
    this.#options = options;
  }

  /** Aborted once the pool stops taking new work (close() or destroy()): unsubscribe here. */
  get signal(): AbortSignal {
    return this.#stopped.signal;
  }

  get closed(): boolean {
    return this.#stopped.signal.aborted;
  }

  /** The newest member, if any. */
  get current(): M | undefined {
    return this.#current?.member;
  }

  /** Members alive: the current one and the retired ones still draining. */
  get size(): number {
    return (this.#current ? 1 : 0) + this.#retired.size;
  }

  /**
   * The member of generation `key`: the current one when its key matches, otherwise one made by
   * `build` (which may throw: nothing changes then), retiring the previous one.
   */
  acquire(key: string, build: () => M): M {
    this.assertOpen();
    if (this.#current?.key === key) return this.#current.member;
    const member = build();
    const previous = this.#current;
    this.#current = { key, member };
    if (previous) this.#retire(previous.member);
    return member;
  }

  /** Throws AGENT_CLOSED once close() or destroy() was called. */
  assertOpen(): void {
    if (this.closed) throw new CertkeeperError('AGENT_CLOSED', `${this.#options.name} is closed`);
  }

  close(): Promise<void> {
    this.#stop();
    this.#closing ??= this.#destroying ?? Promise.all([...this.#retired].map((r) => r.done)).then(() => {});
    return this.#closing;
  }

  destroy(reason: Error | null = null): Promise<void> {
    this.#stop();
    this.#destroying ??= Promise.all(
      [...this.#retired].map((r) => {
        void r.destroy(reason);
        return r.done;
      }),
    ).then(() => {});
    return this.#destroying;
  }

  #stop(): void {
    if (this.closed) return;
    this.#stopped.abort();
    const current = this.#current;
    this.#current = undefined;
    if (current) this.#retire(current.member);
  }

  #retire(member: M): void {
    const forced = new AbortController();
    let destroyed: Promise<void> | undefined;
    const destroy = (reason: Error | null): Promise<void> => {
      if (!destroyed) {
        clearTimeout(timer);
        destroyed = settle(() => this.#options.destroy(member, reason)).catch(() => {});
        forced.abort(reason);
      }
      return destroyed;
    };
    const timer = setTimeout(() => void destroy(null), this.#options.graceMs);
    timer.unref();
    // Drained, or destroyed first (forced aborts, and `destroyed` then decides when it is done).
    // A drain that fails leaves the member in an unknown state: it is destroyed.
    const drained = settle(() => this.#options.drain(member, forced.signal)).then(
      () => destroyed,
      () => destroy(null),
    );
    const whenForced = new Promise<void>((resolve) =>
      forced.signal.addEventListener('abort', () => resolve(destroyed), { once: true }),
    );
    const entry: Retired = {
      destroy,
      done: Promise.race([drained, whenForced]).finally(() => {
        clearTimeout(timer);
        this.#retired.delete(entry);
      }),
    };
    this.#retired.add(entry);
  }
}

/** Runs `fn` now (a member's sockets go at once, not a tick later); its throw becomes a rejection. */
function settle(fn: () => Promise<void> | void): Promise<void> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
