/**
 * File-system primitives shared by `FileStore` and its locks: private modes that do not depend on
 * the umask, durable temp files, directory fsync and the errno → error-code mapping.
 */
import { createHash, randomUUID } from 'node:crypto';
import { chmod, mkdir, open, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { CertkeeperError, describeCause, type ErrorCode } from '../errors.js';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;
/** Temp files start with this; `list` skips them and keys may not use it. */
export const TMP_PREFIX = '.tmp-';

/** A short digest of this host's name: temp files say which host (and pid) is writing them. */
export const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
/**
 * Random per process: a temp file with this process's pid but another tag was left by an earlier
 * process that had the same pid (a container's pid 1 after a restart).
 */
export const PROCESS_TAG = randomUUID().slice(0, 8);

/**
 * `.tmp-<pid>.<host tag>.<process tag>.<uuid>`: a sweeper on the same host can tell a live
 * writer's temp file from one a killed process left behind (`./file-sweep.ts`).
 */
export function tempName(): string {
  return `${TMP_PREFIX}${process.pid}.${HOST_TAG}.${PROCESS_TAG}.${randomUUID()}`;
}

export function errno(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errno(err);
  return code !== undefined && codes.includes(code);
}

function codeFor(err: unknown, reading: boolean): ErrorCode {
  switch (errno(err)) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'STORE_NO_SPACE';
    case 'EACCES':
    case 'EPERM':
      // A value this process may not read is neither missing nor damaged (nor a read-only store).
      return reading ? 'STORE_UNREADABLE' : 'STORE_READ_ONLY';
    case 'EROFS':
      return 'STORE_READ_ONLY';
    case 'EISDIR':
      // A directory where a value should be: the store's content is damaged, not its disk.
      return 'STORE_CORRUPT';
    default:
      return 'STORE_IO';
  }
}

/**
 * Wraps a file-system failure. `what` names the operation and the key or lock, never the value;
 * the message ends with the errno code so operators can tell a full disk from a read-only mount.
 */
export function storeError(
  err: unknown,
  what: string,
  details: Record<string, unknown>,
  reading = false,
): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const code = errno(err);
  return new CertkeeperError(codeFor(err, reading), `${what} failed: ${code ?? describeCause(err)}`, {
    cause: err,
    details: { ...details, errno: code },
  });
}

/**
 * `mkdir -p` with every directory it creates set to 0700. The mode passed to mkdir is filtered by
 * the umask, so each new directory is chmod-ed explicitly before anything goes inside it.
 */
export async function ensureDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: DIR_MODE });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return;
    if (!isErrno(err, 'ENOENT') || dirname(dir) === dir) throw err;
    await ensureDirectory(dirname(dir));
    try {
      await mkdir(dir, { mode: DIR_MODE });
    } catch (again) {
      if (isErrno(again, 'EEXIST')) return;
      throw again;
    }
  }
  await chmod(dir, DIR_MODE);
}

/**
 * Writes `data` to a new, uniquely named 0600 file in `dir`, fsync-ed unless `durable` is false,
 * and returns its path. On failure nothing is left behind.
 */
export async function writeTemp(dir: string, data: Uint8Array | string, durable = true): Promise<string> {
  const path = join(dir, tempName());
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'wx', FILE_MODE);
    await handle.chmod(FILE_MODE);
    await handle.writeFile(data);
    if (durable) await handle.sync();
    const closing = handle;
    handle = undefined;
    await closing.close();
    return path;
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw err;
  }
}

/** Makes a rename, link or unlink in `dir` durable. Skipped where directories cannot be fsync-ed. */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    if (!isErrno(err, 'EINVAL', 'ENOTSUP', 'EISDIR', 'EBADF')) throw err;
  } finally {
    await handle?.close().catch(() => {});
  }
}
