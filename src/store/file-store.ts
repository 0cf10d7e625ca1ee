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
 * - The root directory is trusted only if nobody else can write it (`./file-root.ts`), checked
 *   before the first operation; otherwise every call fails with `STORE_UNSAFE`. Symbolic links in
 *   the store are never followed: a value behind one is `STORE_CORRUPT` (`reason: 'symlink'`),
 *   `list` skips them, `put` and `delete` replace or remove the link itself.
 * - Fenced writes (`put` / `delete` with `{ fence }`) go through their lease's write slot in the
 *   lock area, which the next holder of the lock removes before its lease exists: a write that
 *   was still in flight then fails instead of landing (see "Fencing" in `./file-lock.ts`).
 * - Temp files left by a writer killed mid-write are removed (`./file-sweep.ts`): when the root
 *   is first opened, then at most hourly on writes, or on demand with `sweep()`.
 */
import { constants, type Dirent } from 'node:fs';
import { lstat, open, readdir, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { CertkeeperError, optionError } from '../errors.js';
import {
  ensureDirectory,
  fsyncDirectory,
  isErrno,
  storeError,
  TMP_PREFIX,
  tempName,
  writeTemp,
} from './file-io.js';
import { FileLocks } from './file-lock.js';
import { corrupt, exists, linked, makeParents, prune, quote, realParent } from './file-paths.js';
import { trustedRoot } from './file-root.js';
import { SWEEP_INTERVAL_MS, sweepTempFiles } from './file-sweep.js';
import { assertStoreKey } from './layout.js';
import { closedError, fencedOut, fenceOf, leaseTtl, toBytes } from './shared.js';
import type { LockLease, LockOptions, Store, StoreStat, WriteOptions } from './store.js';

/** Options of `FileStore`. */
export interface FileStoreOptions {
  /**
   * Root directory of the store. Created (mode 0700) on the first write if missing. An existing
   * one must be owned by the effective user and not writable by group or others, nor lie below a
   * directory another user can write (`STORE_UNSAFE` otherwise); it keeps its mode (everything
   * certkeeper creates inside it is 0700 / 0600 regardless).
   */
  directory: string;
}

/** Directory under the root holding the lock tickets. */
const LOCK_AREA = '.locks';
/**
 * O_NONBLOCK so that `get` of a FIFO someone placed in the store fails instead of hanging;
 * O_NOFOLLOW so that a symbolic link at a key is refused (ELOOP) instead of read through.
 */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);
/** Retries of a write whose directory a concurrent `delete` pruned between mkdir and create. */
const PUT_ATTEMPTS = 4;

/** The default store: files in a private directory, atomic writes, cross-process leases. */
export class FileStore implements Store {
  /** Absolute path of the root directory. */
  readonly directory: string;
  readonly #closing = new AbortController();
  /** The real path of the root once it was found trustworthy; every path is built on it. */
  #root: string | undefined;
  #locks: FileLocks | undefined;
  #sweeping: Promise<number> | undefined;
  #lastSweep = 0;

  constructor(options: FileStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw optionError('options', 'of FileStore must be an object with a directory');
    }
    const { directory } = options;
    if (typeof directory !== 'string' || directory.trim() === '' || directory.includes('\0')) {
      throw optionError('directory', 'must be a non-empty path without NUL characters');
    }
    this.directory = resolve(directory);
  }

  async get(key: string): Promise<Uint8Array | null> {
    this.#open();
    const parts = this.#parts(key);
    const root = await this.#trusted(false);
    if (root === null) return null;
    const file = join(root, ...parts);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      await realParent(file, key);
      handle = await open(file, READ_FLAGS);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      if (isErrno(err, 'EISDIR')) throw corrupt(key, 'a directory, not a value');
      if (isErrno(err, 'ELOOP')) throw linked(key);
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

  /**
   * A fenced write's temp file is written into its lease's write slot and renamed from there, so
   * it cannot land once the lease was taken over (see "Fencing" in `./file-lock.ts`).
   */
  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    this.#open();
    const parts = this.#parts(key);
    const fence = fenceOf(options);
    const data = toBytes(value);
    const root = await this.#trusted(true);
    const file = join(root, ...parts);
    const dir = dirname(file);
    const slot = fence && (await this.#slot(fence, key));
    let temp: string | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await realParent(file, key);
          temp ??= await writeTemp(slot ?? dir, data);
          await rename(temp, file);
          temp = undefined;
          break;
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
          if (fence && slot && !(await exists(slot))) throw fencedOut(fence, key);
          if (attempt >= PUT_ATTEMPTS) throw err;
          // The key's directory is missing (or a concurrent delete pruned it): make it again.
          if (temp && !(await exists(temp))) temp = undefined;
          await makeParents(root, parts, key);
        }
      }
      await fsyncDirectory(dir);
    } catch (err) {
      if (temp) await unlink(temp).catch(() => {});
      throw storeError(err, `writing store key ${quote(key)}`, { key });
    }
    if (Date.now() - this.#lastSweep >= SWEEP_INTERVAL_MS) this.#sweepInBackground(root);
  }

  /** A fenced delete moves the value into its lease's write slot, as `put` renames from there. */
  async delete(key: string, options?: WriteOptions): Promise<boolean> {
    this.#open();
    const parts = this.#parts(key);
    const fence = fenceOf(options);
    const root = await this.#trusted(false);
    if (root === null) {
      if (fence) throw fencedOut(fence, key); // no directory, no lock
      return false;
    }
    const file = join(root, ...parts);
    const slot = fence && (await this.#slot(fence, key));
    try {
      await realParent(file, key);
      // A directory at the key is refused below as in an unfenced delete: it holds no value.
      if (!slot || (await lstat(file)).isDirectory()) await unlink(file);
      else {
        const moved = join(slot, tempName());
        await rename(file, moved);
        await unlink(moved).catch(() => {});
      }
      await fsyncDirectory(dirname(file));
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
        if (fence && slot && !(await exists(slot))) throw fencedOut(fence, key);
        return false;
      }
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
    await prune(root, dirname(file));
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    this.#open();
    assertStoreKey(prefix, { allowEmpty: true });
    const parts = prefix === '' ? [] : this.#parts(prefix);
    const root = await this.#trusted(false);
    const keys: string[] = [];
    if (root === null) return keys;
    const start = join(root, ...parts);
    try {
      // A link anywhere on the way (or at the prefix itself) is not listed into.
      if ((await realpath(start)) !== start) return keys;
      const info = await lstat(start);
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
    const parts = this.#parts(key);
    const root = await this.#trusted(false);
    if (root === null) return null;
    const file = join(root, ...parts);
    try {
      await realParent(file, key);
      const info = await lstat(file);
      if (info.isSymbolicLink()) throw linked(key);
      if (!info.isFile()) throw corrupt(key, 'not a regular file');
      return { key, size: info.size, modified: info.mtime };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
      throw storeError(err, `reading store key ${quote(key)}`, { key }, true);
    }
  }

  async lock(name: string, options: LockOptions = {}): Promise<LockLease> {
    this.#open();
    assertStoreKey(name);
    const ttlMs = leaseTtl(options.ttlMs);
    return (await this.#lockArea()).lock(name, ttlMs, options.signal);
  }

  async tryLock(name: string, options: Omit<LockOptions, 'signal'> = {}): Promise<LockLease | null> {
    this.#open();
    assertStoreKey(name);
    const ttlMs = leaseTtl(options.ttlMs);
    return (await this.#lockArea()).tryLock(name, ttlMs);
  }

  async renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    this.#open();
    const ttl = ttlMs === undefined ? undefined : leaseTtl(ttlMs);
    return (await this.#lockArea()).renew(lease, ttl);
  }

  async unlock(lease: LockLease): Promise<boolean> {
    this.#open();
    return (await this.#lockArea()).release(lease);
  }

  /**
   * Removes temp files that writers killed mid-write left behind (older than 15 minutes, their
   * writer not running on this host). Runs by itself when the store first opens its directory and
   * at most hourly on writes; call it from your own maintenance if you like. Returns how many.
   */
  async sweep(): Promise<number> {
    this.#open();
    const root = await this.#trusted(false);
    if (root === null) return 0;
    await this.#sweeping?.catch(() => {});
    return this.#sweep(root);
  }

  async close(): Promise<void> {
    // Waiting lock() calls wake up and reject with STORE_CLOSED.
    this.#closing.abort();
  }

  #open(): void {
    if (this.#closing.signal.aborted) throw closedError('FileStore');
  }

  /**
   * The real path of the root, checked once (`./file-root.ts`) and then kept; `null` while it
   * does not exist, unless `create`. Opening it starts the first sweep of stale temp files.
   */
  async #trusted(create: true): Promise<string>;
  async #trusted(create: boolean): Promise<string | null>;
  async #trusted(create: boolean): Promise<string | null> {
    if (this.#root !== undefined) return this.#root;
    const what = `opening store directory ${quote(this.directory)}`;
    try {
      let root = await trustedRoot(this.directory);
      if (root === null) {
        if (!create) return null;
        await ensureDirectory(this.directory);
        root = await trustedRoot(this.directory);
        if (root === null) throw new CertkeeperError('STORE_IO', `${what} failed: it vanished`);
      }
      if (this.#root === undefined) {
        this.#root = root;
        this.#sweepInBackground(root);
      }
      return this.#root;
    } catch (err) {
      throw storeError(err, what, { directory: this.directory });
    }
  }

  /** The write slot of `fence`, or `LOCK_LOST` when it is no longer the current lease. */
  async #slot(fence: LockLease, key: string): Promise<string> {
    const slot = await (await this.#lockArea()).slot(fence);
    if (slot === null) throw fencedOut(fence, key);
    return slot;
  }

  async #lockArea(): Promise<FileLocks> {
    const root = await this.#trusted(true);
    this.#locks ??= new FileLocks(join(root, LOCK_AREA), () => this.#open(), this.#closing.signal);
    return this.#locks;
  }

  #sweepInBackground(root: string): void {
    // Best effort: a failure here shows up again, and typed, on the next read or write.
    this.#sweep(root).catch(() => {});
  }

  #sweep(root: string): Promise<number> {
    this.#lastSweep = Date.now();
    const sweeping = sweepTempFiles(root, this.#closing.signal);
    this.#sweeping = sweeping;
    return sweeping;
  }

  /** The path segments of a key; refuses keys that would leave the root or hit the store's own files. */
  #parts(key: string): string[] {
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
    return parts;
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
