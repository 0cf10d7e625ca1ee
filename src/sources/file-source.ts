/**
 * Watching the files another tool writes for one certificate. A change is noticed by a
 * directory watch (a certbot `live/` symlink replaced, a Kubernetes `..data` symlink renamed
 * over) and, since watches miss changes behind symlinks and on some volumes, by polling; then
 * the pair is read and validated (file-pair.ts). `changed` is emitted once per new leaf, after
 * the pair is whole and valid; a rewrite of the same certificate emits nothing; files that are
 * not a valid pair (yet) emit `pending` once per content, and are retried at the next change or
 * poll. Events name the files, never their content.
 */
import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { isCertkeeperError, optionError } from '../errors.js';
import { type PairFiles, type ReadPair, readPair } from './file-pair.js';

export interface FileWatchEvents {
  changed: [
    {
      id: string;
      serial: string;
      fingerprint256: string;
      notAfter: Date;
      chainFile: string;
      keyFile: string;
    },
  ];
  pending: [{ id: string; code: string; problem: string; chainFile: string; keyFile: string }];
}

export interface FileWatchOptions {
  /** How often the files are read besides directory notifications (default 5 s; at least 50 ms). */
  pollIntervalMs?: number;
  /** Quiet time after a notification before reading, so a writer can finish (default 100 ms). */
  settleMs?: number;
  now?: () => number;
}

export class FileWatch extends EventEmitter<FileWatchEvents> {
  readonly #files: PairFiles;
  readonly #pollMs: number;
  readonly #settleMs: number;
  readonly #now: () => number;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** Fingerprint of the last valid pair seen (the baseline, then each change). */
  #last: string | undefined;
  /** Problem last reported, so one state of the files is reported once. */
  #lastProblem: string | undefined;

  constructor(
    readonly id: string,
    files: PairFiles,
    options: FileWatchOptions = {},
  ) {
    super();
    this.#files = files;
    this.#pollMs = options.pollIntervalMs ?? 5_000;
    if (!Number.isFinite(this.#pollMs) || this.#pollMs < 50)
      throw optionError('pollIntervalMs', 'must be at least 50', 'FileWatch');
    this.#settleMs = options.settleMs ?? 100;
    this.#now = options.now ?? Date.now;
  }

  get files(): PairFiles {
    return { ...this.#files };
  }

  /**
   * Reads the files once as the baseline (what is there now is not a change) and starts
   * watching. Resolves with the baseline pair, or null when the files are not a valid pair yet.
   */
  async start(): Promise<ReadPair | null> {
    let baseline: ReadPair | null = null;
    try {
      baseline = await readPair(this.#files, this.#now());
      this.#last = baseline.fingerprint256;
    } catch (error) {
      this.#report(error);
    }
    for (const dir of new Set([dirname(this.#files.chain), dirname(this.#files.key)])) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#poke());
        watcher.on('error', () => watcher.close());
        this.#watchers.push(watcher);
      } catch {
        // A directory that does not exist yet: polling finds the files once they are written.
      }
    }
    const tick = () => {
      if (this.#closed) return;
      this.#check();
      this.#timer = setTimeout(tick, this.#pollMs);
      this.#timer.unref();
    };
    this.#timer = setTimeout(tick, this.#pollMs);
    this.#timer.unref();
    return baseline;
  }

  /** Reads the files now (what a poll does); resolves once that read is done. */
  check(): Promise<void> {
    this.#check();
    return this.#running ?? Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#settle);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
  }

  #poke(): void {
    if (this.#closed) return;
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#check(), this.#settleMs);
    this.#settle.unref();
  }

  #check(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#read();
      } while (this.#again && !this.#closed);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  async #read(): Promise<void> {
    let pair: ReadPair;
    try {
      pair = await readPair(this.#files, this.#now());
    } catch (error) {
      this.#report(error);
      return;
    }
    this.#lastProblem = undefined;
    if (pair.fingerprint256 === this.#last || this.#closed) return;
    this.#last = pair.fingerprint256;
    this.emit('changed', {
      id: this.id,
      serial: pair.serial,
      fingerprint256: pair.fingerprint256,
      notAfter: pair.notAfter,
      chainFile: this.#files.chain,
      keyFile: this.#files.key,
    });
  }

  #report(error: unknown): void {
    const code = isCertkeeperError(error) ? error.code : 'ISSUER_UNAVAILABLE';
    const problem = isCertkeeperError(error) ? String(error.details.problem ?? error.message) : 'unreadable';
    const key = `${code}:${problem}`;
    if (key === this.#lastProblem || this.#closed) return;
    this.#lastProblem = key;
    this.emit('pending', {
      id: this.id,
      code,
      problem,
      chainFile: this.#files.chain,
      keyFile: this.#files.key,
    });
  }
}
