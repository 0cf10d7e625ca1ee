/**
 * The certificates handshakes read: server name → id (NameIndex) → the generation served now.
 * The manager is its only writer (it adds and removes ids, sets what each serves); handshakes
 * only read, with Map lookups and no I/O. A certificate known by its stored pointer but not yet
 * in memory (large fleets load lazily) is a miss: `request` queues a load job run by the writer
 * outside the handshake, and the handshake waits for its outcome without doing the work itself.
 */
import type { DeployableGeneration } from '../deploy/target.js';
import { NameIndex } from './name-index.js';

/** Loads a certificate known only by its pointer; resolves undefined when there is nothing to serve. */
export type CacheLoader = (id: string) => Promise<DeployableGeneration | undefined>;

export class CertificateCache {
  readonly #index = new NameIndex();
  readonly #current = new Map<string, DeployableGeneration>();
  /** Server certificate ids, in the order they were added (configuration order). */
  readonly #servers = new Set<string>();
  #serverList: string[] | undefined;
  readonly #jobs = new Map<string, Promise<DeployableGeneration | undefined>>();
  #loader: CacheLoader | undefined;

  // ---- the writer's side (the manager) ----------------------------------------------------

  /** Registers a managed certificate; server certificates are found by their names. */
  add(id: string, names: readonly string[], server: boolean): void {
    if (!server) return;
    this.#index.add(id, names);
    this.#servers.add(id);
    this.#serverList = undefined;
  }

  remove(id: string): void {
    this.#index.remove(id);
    this.#servers.delete(id);
    this.#current.delete(id);
    this.#serverList = undefined;
  }

  /** What handshakes for `id` get from now on. */
  set(id: string, generation: DeployableGeneration): void {
    this.#current.set(id, generation);
  }

  /** Who runs the load jobs that misses queue. */
  setLoader(loader: CacheLoader): void {
    this.#loader = loader;
  }

  // ---- the readers' side (handshakes) -----------------------------------------------------

  /** The id answering `servername` (exact, then wildcard), or undefined. */
  lookup(servername: string | undefined): string | undefined {
    return this.#index.lookup(servername);
  }

  /** The generation served for `id`, or undefined while it is not in memory. */
  current(id: string): DeployableGeneration | undefined {
    return this.#current.get(id);
  }

  isServer(id: string): boolean {
    return this.#servers.has(id);
  }

  /** Server certificate ids, in configuration order. */
  serverIds(): string[] {
    this.#serverList ??= [...this.#servers];
    return this.#serverList;
  }

  /** Whether a miss for `id` can be loaded (a loader is set). */
  get loads(): boolean {
    return this.#loader !== undefined;
  }

  /**
   * A miss: queues one load job for `id` (shared by every handshake waiting for it) and resolves
   * with what it loaded. The job starts after the current handshake callback has returned.
   */
  request(id: string): Promise<DeployableGeneration | undefined> {
    const loader = this.#loader;
    if (!loader) return Promise.resolve(undefined);
    let job = this.#jobs.get(id);
    if (!job) {
      job = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => loader(id))
        .finally(() => this.#jobs.delete(id));
      this.#jobs.set(id, job);
    }
    return job;
  }
}
