/**
 * TrustStore: one trust bundle combined from several sources (files, URLs, a bootstrapped CA,
 * the internal CA, explicit PEMs), kept current, guarded and exported.
 *
 * Rules, in the order an update goes through them:
 * 1. Each source is loaded on its own. A source that fails, or answers with something that is not
 *    certificates, keeps its last good contribution (`sourceFailed`): a broken mount or a CA
 *    answering an HTML error page must not silently empty the trust of a running service.
 * 2. The union of the contributions is the candidate bundle. An empty candidate is refused
 *    (TRUST_EMPTY): trusting nothing rejects every peer.
 * 3. The guard: every protected chain (the manager's own certificates, peers that must keep
 *    working) that chains to the current bundle must still chain to the candidate, else the update
 *    is refused (TRUST_UPDATE_REFUSED, `refused` event) and nothing changes, unless `force`.
 *    This is what makes the last step of a CA rotation safe to automate.
 * 4. Applied: a new bundle (higher version), `changed` with the added and removed fingerprints,
 *    subscribers called, and the export file (if configured) atomically rewritten.
 *
 * Loads are serialised: one update runs at a time; requests arriving meanwhile (watch events,
 * `refresh()` calls) are coalesced into one more run after it, so an older answer never
 * overwrites a newer one.
 */
import { EventEmitter } from 'eventemitter3';
import { type Clock, systemClock } from '../clock.js';
import { type ParsedCertificate, parseCertificates } from '../crypto/inspect.js';
import { CertkeeperError, describeCause, isCertkeeperError, optionError } from '../errors.js';
import { makeBundle, type TrustBundle, type TrustBundleSource } from './bundle.js';
import { chainsToAnchor } from './chain.js';
import { writeBundleFile } from './export.js';
import { every } from './poll.js';
import type { TrustSource } from './source.js';

/** Chains (PEM, leaf first) that every accepted bundle must keep trusting. */
export type ProtectedChains = () => Iterable<string> | Promise<Iterable<string>>;

/** Options of `TrustStore`. */
export interface TrustStoreOptions {
  sources: TrustSource[];
  /** Chains that must stay trusted; more can be added with `protect()`. */
  protect?: ProtectedChains;
  /** Rewrite this file (atomically) with the bundle on every change. */
  exportPath?: string;
  /** Re-load every source this often, beside the sources' own watches; 0 (default) disables. */
  pollIntervalMs?: number;
  /** Times the poll (a FakeClock in tests). Default: the system clock. */
  clock?: Clock;
}

/** A change of the trusted bundle: what was added and removed (fingerprints). */
export interface TrustChange {
  version: number;
  added: string[];
  removed: string[];
  fingerprints: readonly string[];
}

/** The events of a `TrustStore`. */
export interface TrustStoreEvents {
  changed: [TrustChange];
  sourceFailed: [{ source: string; error: CertkeeperError }];
  /** An update was not applied; the current bundle stays. */
  refused: [{ error: CertkeeperError; added: string[]; removed: string[] }];
  exportFailed: [{ path: string; error: CertkeeperError }];
}

/** Options of `TrustStore.refresh`. */
export interface RefreshOptions {
  /** Apply even if protected chains would no longer be trusted. */
  force?: boolean;
}

const EMPTY: TrustBundle = Object.freeze({ version: 0, certificates: [], fingerprints: [] });

const invalid = (option: string, problem: string) => optionError(option, problem, 'TrustStore');

export class TrustStore extends EventEmitter<TrustStoreEvents> implements TrustBundleSource {
  readonly #sources: readonly TrustSource[];
  /** The contribution of each source that built the current bundle. */
  readonly #good = new Map<string, ParsedCertificate[]>();
  readonly #protectors = new Set<ProtectedChains>();
  readonly #listeners = new Set<(bundle: TrustBundle) => void>();
  readonly #exportPath: string | undefined;
  #exporting: Promise<void> | undefined;
  #exportAgain = false;
  /** Every write of a bundle file, in order: two at once could rename an older bundle last. */
  #writes: Promise<unknown> = Promise.resolve();
  readonly #pollMs: number;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  #bundle: TrustBundle = EMPTY;
  #anchors: ParsedCertificate[] = [];
  /** The last run scheduled; the next one starts after it settles. */
  #tail: Promise<unknown> = Promise.resolve();
  #queued: { promise: Promise<TrustBundle>; force: boolean } | undefined;
  #stops: (() => void)[] = [];
  #state: 'new' | 'started' | 'stopped' = 'new';
  #stopping: Promise<void> | undefined;

  constructor(options: TrustStoreOptions) {
    super();
    if (!Array.isArray(options?.sources) || options.sources.length === 0) {
      throw invalid('sources', 'must list at least one TrustSource');
    }
    const names = new Set<string>();
    for (const source of options.sources) {
      if (typeof source?.name !== 'string' || typeof source.load !== 'function') {
        throw invalid('sources', 'must each have a name and a load() function');
      }
      if (names.has(source.name))
        throw invalid('sources', `must have distinct names (duplicate source name "${source.name}")`);
      names.add(source.name);
    }
    this.#sources = [...options.sources];
    if (options.protect) this.#protectors.add(options.protect);
    this.#exportPath = options.exportPath;
    this.#pollMs = options.pollIntervalMs ?? 0;
    this.#clock = options.clock ?? systemClock;
    if (!Number.isFinite(this.#pollMs) || this.#pollMs < 0) throw invalid('pollIntervalMs', 'must be >= 0');
  }

  /** The current bundle; version 0 and empty before `start()` resolved. */
  current(): TrustBundle {
    return this.#bundle;
  }

  subscribe(listener: (bundle: TrustBundle) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Adds chains the guard protects; returns the function that removes them. */
  protect(chains: ProtectedChains): () => void {
    this.#protectors.add(chains);
    return () => this.#protectors.delete(chains);
  }

  get sources(): readonly TrustSource[] {
    return this.#sources;
  }

  /**
   * Loads every source and starts watching them. Rejects with TRUST_EMPTY when no source yielded
   * a certificate (each failure was emitted as `sourceFailed`). Idempotent.
   */
  async start(): Promise<TrustBundle> {
    if (this.#state === 'stopped') throw new CertkeeperError('INVALID_OPTION', 'TrustStore is stopped');
    if (this.#state === 'started') return this.#bundle;
    this.#state = 'started';
    let bundle: TrustBundle;
    try {
      bundle = await this.refresh();
    } catch (error) {
      this.#state = 'new';
      throw error;
    }
    for (const source of this.#sources) {
      if (source.watch) this.#stops.push(source.watch(() => this.#background()));
    }
    if (this.#pollMs > 0) {
      this.#stops.push(every(this.#clock, this.#pollMs, () => this.#background()));
    }
    return bundle;
  }

  /**
   * Stops watching and polling, and resolves once the refresh and bundle export under way have
   * ended (their source loads are aborted). The last bundle stays readable. Idempotent: every
   * call resolves when the first one is done.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#state = 'stopped';
      this.#abort.abort();
      for (const stop of this.#stops.splice(0)) stop();
      await this.#tail;
      await this.#exporting;
    })();
    return this.#stopping;
  }

  /**
   * Re-loads every source and applies the result. Resolves with the bundle now current; rejects
   * with TRUST_UPDATE_REFUSED or TRUST_EMPTY when the result was refused (and emits `refused`).
   */
  refresh(options: RefreshOptions = {}): Promise<TrustBundle> {
    const force = options.force ?? false;
    // A run that has not started yet takes every request arriving meanwhile (force is sticky).
    if (this.#queued) {
      this.#queued.force ||= force;
      return this.#queued.promise;
    }
    const entry = { force } as { force: boolean; promise: Promise<TrustBundle> };
    entry.promise = this.#tail.then(() => {
      if (this.#queued === entry) this.#queued = undefined;
      return this.#update(entry.force);
    });
    this.#queued = entry;
    this.#tail = entry.promise.catch(() => {});
    return entry.promise;
  }

  /** A refresh nobody awaits (watch, poll): outcomes are reported as events only. */
  #background(): void {
    if (this.#state !== 'started') return;
    this.refresh().catch(() => {});
  }

  /**
   * Throws (and emits `refused`) if replacing `source`'s contribution with `pems` (or, without
   * `source`, the whole bundle) would be refused. Nothing changes either way; the internal CA's
   * `finishRootRotation` uses this as its guard before it drops the previous root.
   */
  async assertUpdate(pems: readonly string[], source?: string): Promise<void> {
    const parsed = this.#parse(pems, source ?? 'candidate');
    const anchors = source
      ? this.#union(new Map([...this.#good].filter(([name]) => name !== source)).set(source, parsed))
      : dedupe(parsed);
    const refusal = await this.#judge(anchors);
    if (refusal) {
      this.#emitRefused(refusal, anchors);
      throw refusal;
    }
  }

  /**
   * Writes the current bundle to `path` atomically (temp file, fsync, rename), after any write of
   * a bundle file under way (the automatic export of a change): when it resolves, the file holds
   * the bundle current when the write began and no write of it is in progress.
   */
  exportPem(path: string, mode?: number): Promise<void> {
    return this.#write(path, mode);
  }

  #write(path: string, mode?: number): Promise<void> {
    const run = this.#writes.then(() => writeBundleFile(path, this.#bundle, mode));
    this.#writes = run.catch(() => {});
    return run;
  }

  async #update(force: boolean): Promise<TrustBundle> {
    const next = new Map(this.#good);
    const failures: CertkeeperError[] = [];
    await Promise.all(
      this.#sources.map(async (source) => {
        try {
          next.set(source.name, this.#parse(await source.load(this.#abort.signal), source.name));
        } catch (error) {
          const failure = sourceError(source.name, error);
          failures.push(failure);
          this.emit('sourceFailed', { source: source.name, error: failure });
        }
      }),
    );
    const anchors = this.#union(next);
    const prints = anchors.map((a) => a.info.fingerprint256).sort();
    if (sameList(prints, this.#bundle.fingerprints) && this.#bundle.version > 0) {
      for (const [name, contribution] of next) this.#good.set(name, contribution);
      return this.#bundle;
    }
    const refusal = anchors.length === 0 ? emptyError(failures) : await this.#judge(anchors, force);
    if (refusal) {
      this.#emitRefused(refusal, anchors);
      throw refusal;
    }
    for (const [name, contribution] of next) this.#good.set(name, contribution);
    this.#apply(anchors);
    return this.#bundle;
  }

  #apply(anchors: ParsedCertificate[]): void {
    const previous = new Set(this.#bundle.fingerprints);
    const bundle = makeBundle(
      anchors.map((a) => a.pem),
      this.#bundle.version + 1,
    );
    const now = new Set(bundle.fingerprints);
    this.#bundle = bundle;
    this.#anchors = anchors;
    const change: TrustChange = {
      version: bundle.version,
      added: bundle.fingerprints.filter((f) => !previous.has(f)),
      removed: [...previous].filter((f) => !now.has(f)),
      fingerprints: bundle.fingerprints,
    };
    this.emit('changed', change);
    for (const listener of this.#listeners) {
      try {
        listener(bundle);
      } catch {
        // A consumer's failure is its own; the other consumers still get the bundle.
      }
    }
    if (this.#exportPath) this.#scheduleExport(this.#exportPath);
  }

  /**
   * Writes the current bundle to `path`, one write at a time: two writes racing could finish
   * their renames in either order and leave the older bundle in the file. A change during a
   * write is written after it (only the newest bundle; intermediate ones are skipped).
   */
  #scheduleExport(path: string): void {
    if (this.#exporting) {
      this.#exportAgain = true;
      return;
    }
    this.#exporting = (async () => {
      do {
        this.#exportAgain = false;
        try {
          await this.#write(path);
        } catch (error) {
          this.emit('exportFailed', { path, error: error as CertkeeperError });
        }
      } while (this.#exportAgain);
      this.#exporting = undefined;
    })();
  }

  /** The reason to refuse `anchors`, or null. */
  async #judge(anchors: ParsedCertificate[], force = false): Promise<CertkeeperError | null> {
    if (anchors.length === 0) {
      return new CertkeeperError('TRUST_EMPTY', 'trust update refused: the bundle would hold no certificate');
    }
    if (force || this.#anchors.length === 0) return null;
    const untrusted: { fingerprint: string; subject: string }[] = [];
    for (const protector of this.#protectors) {
      for (const chainPem of await protector()) {
        let chain: ParsedCertificate[];
        try {
          chain = parseCertificates(chainPem, 'protected chain');
        } catch {
          continue; // not a chain: nothing to protect
        }
        // Only chains trusted now are protected: a chain no bundle ever covered (a public
        // certificate, a self-signed one) must not block every update.
        if (chainsToAnchor(chain, this.#anchors) && !chainsToAnchor(chain, anchors)) {
          untrusted.push({ fingerprint: chain[0]!.info.fingerprint256, subject: chain[0]!.info.subject });
        }
      }
    }
    if (untrusted.length === 0) return null;
    return new CertkeeperError(
      'TRUST_UPDATE_REFUSED',
      `trust update refused: ${untrusted.length} protected chain(s) would no longer be trusted ` +
        `(${untrusted.map((u) => u.subject).join('; ')}); re-issue them first or pass { force: true }`,
      { details: { untrusted } },
    );
  }

  #emitRefused(error: CertkeeperError, anchors: ParsedCertificate[]): void {
    const prints = new Set(anchors.map((a) => a.info.fingerprint256));
    const current = new Set(this.#bundle.fingerprints);
    this.emit('refused', {
      error,
      added: [...prints].filter((f) => !current.has(f)),
      removed: [...current].filter((f) => !prints.has(f)),
    });
  }

  #parse(pems: readonly string[], source: string): ParsedCertificate[] {
    if (!Array.isArray(pems)) {
      throw sourceError(source, new TypeError('load() did not resolve with an array of PEM texts'));
    }
    return pems.flatMap((text) => {
      if (typeof text !== 'string') throw sourceError(source, new TypeError('load() returned a non-string'));
      return parseCertificates(text, `trust source ${source}`);
    });
  }

  #union(contributions: Map<string, ParsedCertificate[]>): ParsedCertificate[] {
    return dedupe([...contributions.values()].flat());
  }
}

function dedupe(certificates: ParsedCertificate[]): ParsedCertificate[] {
  const seen = new Map<string, ParsedCertificate>();
  for (const cert of certificates) seen.set(cert.info.fingerprint256, cert);
  return [...seen.values()];
}

/**
 * TRUST_EMPTY, saying why: each failing source with its own error (an InternalCA with no store, a
 * URL that refused), so the reason is not only in `sourceFailed` events nobody listened to yet.
 */
function emptyError(failures: CertkeeperError[]): CertkeeperError {
  const failed = failures.map((f) => {
    const cause = f.cause as { code?: string; message?: string } | undefined;
    const code = (f.details.causeCode as string | undefined) ?? f.code;
    return { source: f.details.source as string, code, message: cause?.message ?? f.message };
  });
  const why = failed.map((f) => `${f.source} failed: ${f.code}: ${f.message}`).join('; ');
  return new CertkeeperError(
    'TRUST_EMPTY',
    `trust update refused: the bundle would hold no certificate${why ? ` (${why})` : ''}`,
    { ...(failures[0] ? { cause: failures[0] } : {}), details: { failed } },
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Every source failure as TRUST_SOURCE_FAILED; the source's own code is kept in details. */
function sourceError(source: string, error: unknown): CertkeeperError {
  if (isCertkeeperError(error, 'TRUST_SOURCE_FAILED')) return error;
  const cause = isCertkeeperError(error) ? error.code : undefined;
  return new CertkeeperError(
    'TRUST_SOURCE_FAILED',
    `trust source ${source} failed: ${describeCause(error)}`,
    {
      cause: error,
      details: { source, ...(cause ? { causeCode: cause } : {}) },
    },
  );
}
