/**
 * Trust anchors from PEM files, such as a CA bundle mounted from a Kubernetes or Docker secret.
 *
 * Those mounts never edit a file in place: Kubernetes writes a new timestamped directory and
 * atomically swaps the `..data` symlink the visible files point through; Docker and most tools
 * write a temp file and rename it over the old one. A watch on the file itself would follow the
 * old inode and go quiet after the first swap, so the watch is on the directory, and any event
 * there is reported (the store re-reads and compares fingerprints, so a spurious event costs a
 * read). `fs.watch` is not reliable everywhere (network file systems, some container overlays,
 * a directory that is itself replaced), so a poll of `stat` (inode, size, mtime, following
 * symlinks) runs beside it as the fallback.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import { CertkeeperError, describeCause, optionError } from '../errors.js';
import { every } from './poll.js';
import type { TrustSource } from './source.js';

/** Options of `FileTrustSource`. */
export interface FileTrustSourceOptions {
  /** Files holding one or more PEM certificates each. */
  paths: string[];
  /** Default `files:<first basename>`. */
  name?: string;
  /** Poll fallback interval; 0 disables polling. Default 10 s. */
  pollIntervalMs?: number;
  /** Use `fs.watch` on the directories (default true); false where it misbehaves (some NFS). */
  fsWatch?: boolean;
  /** Times the poll (a FakeClock in tests). Default: the system clock. */
  clock?: Clock;
}

export class FileTrustSource implements TrustSource {
  readonly name: string;
  readonly paths: readonly string[];
  readonly #pollMs: number;
  readonly #fsWatch: boolean;
  readonly #clock: Clock;

  constructor(options: FileTrustSourceOptions) {
    if (!Array.isArray(options.paths) || options.paths.length === 0) {
      throw optionError('paths', 'must list at least one file', 'FileTrustSource');
    }
    this.paths = options.paths.map((p) => resolve(p));
    this.name = options.name ?? `files:${basename(this.paths[0]!)}`;
    this.#pollMs = options.pollIntervalMs ?? 10_000;
    this.#fsWatch = options.fsWatch ?? true;
    this.#clock = options.clock ?? systemClock;
    if (!Number.isFinite(this.#pollMs) || this.#pollMs < 0) {
      throw optionError('pollIntervalMs', 'must be >= 0', 'FileTrustSource');
    }
  }

  async load(signal: AbortSignal): Promise<string[]> {
    return Promise.all(
      this.paths.map(async (path) => {
        try {
          return await readFile(path, { encoding: 'utf8', signal });
        } catch (error) {
          throw new CertkeeperError(
            'TRUST_SOURCE_FAILED',
            `trust source ${this.name}: cannot read ${path} (${describeCause(error)})`,
            { cause: error, details: { source: this.name, path } },
          );
        }
      }),
    );
  }

  watch(onChange: () => void): () => void {
    const watchers: FSWatcher[] = [];
    for (const dir of this.#fsWatch ? new Set(this.paths.map((p) => dirname(p))) : []) {
      try {
        const watcher = watch(dir, { persistent: false }, () => onChange());
        // A watched directory that disappears errors the watcher; the poll carries on alone.
        watcher.on('error', () => watcher.close());
        watchers.push(watcher);
      } catch {
        // Directory missing or watch unsupported here: the poll is the fallback.
      }
    }
    let stopPoll: (() => void) | undefined;
    let last: string | undefined;
    let stopped = false;
    const signature = async () =>
      (
        await Promise.all(
          this.paths.map(async (p) => {
            try {
              const s = await stat(p);
              return `${s.ino}:${s.size}:${s.mtimeMs}`;
            } catch {
              return 'missing';
            }
          }),
        )
      ).join('|');
    if (this.#pollMs > 0) {
      void signature().then((first) => {
        last = first;
      });
      stopPoll = every(this.#clock, this.#pollMs, () => {
        void signature().then((now) => {
          if (stopped) return;
          if (last !== undefined && now !== last) onChange();
          last = now;
        });
      });
    }
    return () => {
      stopped = true;
      stopPoll?.();
      for (const watcher of watchers) watcher.close();
    };
  }
}
