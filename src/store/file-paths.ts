/**
 * Paths inside a `FileStore` directory: refusing symbolic links on the way to a key, creating a
 * key's directories without following links, and pruning the ones a delete emptied. Internal.
 */
import { chmod, lstat, mkdir, realpath, rmdir } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { CertkeeperError } from '../errors.js';
import { DIR_MODE, ensureDirectory, isErrno } from './file-io.js';

export function quote(key: string): string {
  return JSON.stringify(key);
}

export function corrupt(key: string, why: string, reason?: string): CertkeeperError {
  return new CertkeeperError('STORE_CORRUPT', `store key ${quote(key)} is ${why}`, {
    details: reason === undefined ? { key } : { key, reason },
  });
}

export const linked = (key: string) =>
  corrupt(key, 'behind a symbolic link, which the store never follows', 'symlink');

/** Whether anything (a link included) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

/** Refuses a key whose directory is reached through a symbolic link (ENOENT passes through). */
export async function realParent(file: string, key: string): Promise<void> {
  const dir = dirname(file);
  if ((await realpath(dir)) !== dir) throw linked(key);
}

/** `mkdir -p` below the root that refuses to create anything through a symbolic link. */
export async function makeParents(root: string, parts: string[], key: string): Promise<void> {
  await ensureDirectory(root); // the root itself may have been removed while we ran
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    try {
      await mkdir(dir, { mode: DIR_MODE });
      await chmod(dir, DIR_MODE); // mkdir's mode is filtered by the umask
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // Gone again already: a concurrent delete pruned it; put's next attempt makes it anew.
      const found = await lstat(dir).catch((e) => {
        if (isErrno(e, 'ENOENT')) return null;
        throw e;
      });
      if (found === null) return;
      if (found.isSymbolicLink()) throw linked(key);
    }
  }
}

/** Removes directories emptied by a delete, up to (not including) the root. Best effort. */
export async function prune(root: string, dir: string): Promise<void> {
  let current = dir;
  while (current !== root && current.startsWith(root + sep)) {
    try {
      await rmdir(current);
    } catch {
      return; // not empty (or gone): stop
    }
    current = dirname(current);
  }
}
