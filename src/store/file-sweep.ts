/**
 * Removing the temp files that writers killed mid-write leave behind. A `FileStore` write is a
 * temp file renamed over its target; `kill -9` (or a power loss) between the two leaves the temp
 * file, which may hold a whole private key, in the store for good. `FileStore` sweeps them when
 * it first opens its directory and again, at most once per `SWEEP_INTERVAL_MS`, when it writes.
 *
 * A temp file is removed only when it is older than `STALE_TEMP_MS` (a write takes milliseconds)
 * and its writer is not a live process on this host: the name records the writer's pid, host and
 * a per-process tag (`./file-io.ts`), so a writer stalled for longer (a stopped VM, a slow disk)
 * keeps its file, and one left by an earlier process with this very pid does not.
 * A writer on another host sharing the directory cannot be asked; if it stalls past the bound, its
 * rename fails and its `put` reports `STORE_IO`: the previous value is never touched.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST_TAG, isErrno, PROCESS_TAG, TMP_PREFIX } from './file-io.js';

/** Age after which a temp file whose writer is not known to be alive is removed. */
export const STALE_TEMP_MS = 15 * 60_000;
/** Writes trigger a sweep at most this often. */
export const SWEEP_INTERVAL_MS = 60 * 60_000;

const WRITER = /^\.tmp-(\d+)\.([0-9a-f]{8})\.([0-9a-f]{8})\./;

/** Whether the process that created this temp file is running on this host (or may be). */
function writerAlive(name: string): boolean {
  const match = WRITER.exec(name);
  if (!match || match[2] !== HOST_TAG) return false; // another host, or an older name: age decides
  const pid = Number(match[1]);
  // Our pid: in flight here, or left by an earlier process that had the same pid.
  if (pid === process.pid) return match[3] === PROCESS_TAG;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists under another user.
    return !isErrno(err, 'ESRCH');
  }
}

/**
 * Removes stale temp files anywhere below `root` (the lock area included), never following
 * symbolic links. Returns how many it removed. Stops early when `signal` aborts.
 */
export async function sweepTempFiles(root: string, signal: AbortSignal, now = Date.now()): Promise<number> {
  let removed = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return; // removed meanwhile
      throw err;
    }
    for (const entry of entries) {
      if (signal.aborted) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(path);
      } else if (entry.name.startsWith(TMP_PREFIX) && !writerAlive(entry.name)) {
        try {
          if (now - (await lstat(path)).mtimeMs < STALE_TEMP_MS) continue;
          await unlink(path);
          removed++;
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err; // renamed or removed by someone else meanwhile
        }
      }
    }
  };
  await walk(root);
  return removed;
}
