/**
 * `FileStore`: the default `Store`, one file per key under a directory. Several processes (or
 * hosts, on a shared file system with working `link` and `rename`) may share the directory.
 *
 * - Writes are atomic: temp file in the target's directory, fsync, rename over the target, fsync
 *   the directory. A failed write (full disk, read-only mount) removes its temp file and leaves
 *   the previous value in place.
 * - Everything is private: files 0600, directories 0700, set explicitly rather than left to the
 *   umask, because the store holds private keys.
 * - Temp files (`.tmp-*`) and the lock area (`.locks/`) share the directory with the keys; keys
 *   that would collide with them are refused with `INVALID_STORE_KEY`.
 * - A key cannot be both a value and a prefix of other keys (`a` and `a/b`): a path is either a
 *   file or a directory. certkeeper's own layout never does this. `get`/`stat` of a path that is
 *   a directory throws `STORE_CORRUPT`; empty directories are removed on `delete`.
 */
import { constants, type Dirent } from 'node:fs';
import { open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { CertkeeperError } from '../errors.js';
import { ensureDirectory, fsyncDirectory, isErrno, storeError, TMP_PREFIX, writeTemp } from './file-io.js';
import { FileLocks } from './file-lock.js';
import { assertStoreKey } from './layout.js';
import { closedError, leaseTtl, toBytes } from './shared.js';
import type { LockLease, LockOptions, Store, StoreStat } from './store.js';

export interface FileStoreOptions {
  /**
   * Root directory of the store. Created (mode 0700) on the first write if missing; an existing
   * one keeps its mode (everything certkeeper creates inside it is 0700 / 0600 regardless).
   */
  directory: string;
}

/** Directory under the root holding the lock tickets. */
const LOCK_AREA = '.locks';
/** O_NONBLOCK so that `get` of a FIFO someone placed in the store fails instead of hanging. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
/** Retries of a write whose directory a concurrent `delete` pruned between mkdir and create. */
const PUT_ATTEMPTS = 4;

function quote(key: string): string {
  return JSON.stringify(key);
}

function corrupt(key: string, why: string): CertkeeperError {
  return new CertkeeperError('STORE_CORRUPT', `store key ${quote(key)} is ${why}`, { details: { key } });
}

export class FileStore implements Store {
  /** Absolute path of the root directory. */
  readonly directory: string;
  readonly #locks: FileLocks;
  readonly #closing = new AbortController();

  constructor(options: FileStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new CertkeeperError('INVALID_OPTION', 'FileStore options must be an object with a directory', {
        details: { option: 'options' },
      });
    }
    const { directory } = options;
    if (typeof directory !== 'string' || directory.trim() === '' || directory.includes('\0')) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        'directory must be a non-empty path without NUL characters',
        {
          details: { option: 'directory' },
        },
      );
    }
    this.directory = resolve(directory);
    this.#locks = new FileLocks(join(this.directory, LOCK_AREA), () => this.#open(), this.#closing.signal);
  }

  async get(key: string): Promise<Uint8Array | null> {
    this.#open();
    const file = this.#path(key);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(file, READ_FLAGS);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      if (isErrno(err, 'EISDIR')) throw corrupt(key, 'a directory, not a value');
      throw storeError(err, `reading store key ${quote(key)}`, { key }, true);
    }
    try {
      // Reading through the open descriptor: a concurrent rename cannot mix old and new bytes.
      if (!(await handle.stat()).isFile()) throw corrupt(key, 'not a regular file');
      const data = await handle.readFile();
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (err) {
      throw storeError(err, `reading store key ${quote(key)}`, { key }, true);
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async put(key: string, value: Uint8Array | string): Promise<void> {
    this.#open();
    const file = this.#path(key);
    const data = toBytes(value);
    const dir = dirname(file);
    try {
      for (let attempt = 1; ; attempt++) {
        let temp: string;
        try {
          temp = await writeTemp(dir, data);
        } catch (err) {
          if (!isErrno(err, 'ENOENT') || attempt >= PUT_ATTEMPTS) throw err;
          await ensureDirectory(dir);
          continue;
        }
        try {
          await rename(temp, file);
        } catch (err) {
          await unlink(temp).catch(() => {});
          throw err;
        }
        break;
      }
      await fsyncDirectory(dir);
    } catch (err) {
      throw storeError(err, `writing store key ${quote(key)}`, { key });
    }
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    const file = this.#path(key);
    try {
      await unlink(file);
      await fsyncDirectory(dirname(file));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
      // An empty directory where a value should be holds nothing: removing it frees the key.
      if (
        isErrno(err, 'EISDIR', 'EPERM') &&
        (await rmdir(file).then(
          () => true,
          () => false,
        ))
      )
        return false;
      if (isErrno(err, 'EISDIR')) throw corrupt(key, 'a directory, not a value');
      throw storeError(err, `deleting store key ${quote(key)}`, { key });
    }
    await this.#prune(dirname(file));
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    const start = prefix === '' ? this.directory : this.#path(prefix);
    const keys: string[] = [];
    try {
      const info = await stat(start);
      if (prefix === '' && !info.isDirectory()) {
        throw new CertkeeperError('STORE_IO', `store directory ${quote(this.directory)} is not a directory`);
      }
      if (info.isFile()) return [prefix];
      if (info.isDirectory()) await this.#walk(start, prefix, keys);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return keys;
      throw storeError(err, `listing store prefix ${quote(prefix)}`, { prefix }, true);
    }
    return keys;
  }

  async stat(key: string): Promise<StoreStat | null> {
    this.#open();
    const file = this.#path(key);
    try {
      const info = await stat(file);
      if (!info.isFile()) throw corrupt(key, 'not a regular file');
      return { key, size: info.size, modified: info.mtime };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      throw storeError(err, `reading store key ${quote(key)}`, { key }, true);
    }
  }

  async lock(name: string, options: LockOptions = {}): Promise<LockLease> {
    this.#open();
    return this.#locks.lock(name, leaseTtl(options.ttlMs), options.signal);
  }

  async tryLock(name: string, options: Omit<LockOptions, 'signal'> = {}): Promise<LockLease | null> {
    this.#open();
    return this.#locks.tryLock(name, leaseTtl(options.ttlMs));
  }

  async renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    this.#open();
    return this.#locks.renew(lease, ttlMs === undefined ? undefined : leaseTtl(ttlMs));
  }

  async unlock(lease: LockLease): Promise<boolean> {
    this.#open();
    return this.#locks.release(lease);
  }

  async close(): Promise<void> {
    // Waiting lock() calls wake up and reject with STORE_CLOSED.
    this.#closing.abort();
  }

  #open(): void {
    if (this.#closing.signal.aborted) throw closedError('FileStore');
  }

  /** The file of a key; refuses keys that would leave the root or hit the store's own files. */
  #path(key: string): string {
    assertStoreKey(key);
    const parts = key.split('/');
    if (parts[0] === LOCK_AREA || parts.some((part) => part.startsWith(TMP_PREFIX))) {
      throw new CertkeeperError(
        'INVALID_STORE_KEY',
        `invalid store key ${quote(key)}: reserved by FileStore`,
        {
          details: { reason: 'reserved by FileStore' },
        },
      );
    }
    const file = join(this.directory, ...parts);
    const rel = relative(this.directory, file);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || resolve(this.directory, rel) !== file) {
      throw new CertkeeperError('INVALID_STORE_KEY', `invalid store key ${quote(key)}: escapes the store`, {
        details: { reason: 'escapes the store' },
      });
    }
    return file;
  }

  async #walk(dir: string, prefix: string, keys: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // Removed while we were listing: the contract lets such keys appear or not.
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TMP_PREFIX) || (prefix === '' && entry.name === LOCK_AREA)) continue;
      const key = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await this.#walk(join(dir, entry.name), key, keys);
      else if (entry.isFile() && isValidKey(key)) keys.push(key);
    }
  }

  /** Removes directories emptied by a delete, up to (not including) the root. Best effort. */
  async #prune(dir: string): Promise<void> {
    let current = dir;
    while (current !== this.directory && current.startsWith(this.directory + sep)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (or gone): stop
      }
      current = dirname(current);
    }
  }
}

/** Files placed in the directory by hand may have names no key can have; `list` skips them. */
function isValidKey(key: string): boolean {
  try {
    assertStoreKey(key);
    return true;
  } catch {
    return false;
  }
}
