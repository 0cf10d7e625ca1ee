/**
 * Whether a `FileStore` may trust its root directory. Whoever can change what is in the directory
 * can plant a CA, a certificate pointer or a key that the store would then hand out as its own, so
 * an existing directory is used only when nobody but the effective user (and root) can write it:
 *
 * - the directory is owned by the effective user, and neither group nor others may write it
 *   (others may read: the files inside are 0600 anyway);
 * - every directory above it is owned by the effective user or root, and is not writable by group
 *   or others unless its sticky bit is set (as on `/tmp`): otherwise another user could rename the
 *   store directory away and put their own in its place.
 *
 * The check runs on the real path (symbolic links resolved once), and the store then works on
 * that path, so a link that is repointed later changes nothing. Failures are `STORE_UNSAFE`, with
 * `details.reason` (`owner`, `writable`, `ancestor`) and what to change. On platforms without
 * POSIX owners (Windows) only the resolution happens.
 */
import type { Stats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CertkeeperError } from '../errors.js';
import { isErrno } from './file-io.js';

const GROUP_OR_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

function unsafe(directory: string, reason: string, why: string, details: Record<string, unknown>) {
  return new CertkeeperError('STORE_UNSAFE', `store directory ${JSON.stringify(directory)} ${why}`, {
    details: { directory, reason, ...details },
  });
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

/**
 * The real path of a trustworthy root directory, or `null` when `directory` does not exist.
 * Throws `STORE_UNSAFE` for a directory others could change; I/O errors are thrown as they are.
 */
export async function trustedRoot(directory: string): Promise<string | null> {
  let real: string;
  try {
    real = await realpath(directory);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  const info = await lstat(real);
  if (!info.isDirectory()) {
    throw new CertkeeperError('STORE_IO', `store directory ${JSON.stringify(directory)} is not a directory`, {
      details: { directory },
    });
  }
  const euid = process.geteuid?.();
  if (euid === undefined) return real;
  if (info.uid !== euid) {
    throw unsafe(
      directory,
      'owner',
      `is owned by uid ${info.uid}, not by this process (uid ${euid}): another user could have put ` +
        'anything in it. Remove it (certkeeper creates its own) or chown it to this user',
      { uid: info.uid, euid },
    );
  }
  if ((info.mode & GROUP_OR_OTHER_WRITE) !== 0) {
    throw unsafe(
      directory,
      'writable',
      `is writable by group or others (mode ${octal(info.mode)}): chmod go-w it (0700 is what certkeeper creates)`,
      { mode: octal(info.mode) },
    );
  }
  for (let parent = dirname(real); ; parent = dirname(parent)) {
    checkAncestor(directory, parent, await lstat(parent), euid);
    if (dirname(parent) === parent) break;
  }
  return real;
}

function checkAncestor(directory: string, parent: string, info: Stats, euid: number): void {
  const foreign = info.uid !== euid && info.uid !== 0;
  const open = (info.mode & GROUP_OR_OTHER_WRITE) !== 0 && (info.mode & STICKY) === 0;
  if (!foreign && !open) return;
  throw unsafe(
    directory,
    'ancestor',
    `is below ${JSON.stringify(parent)}, which ${
      foreign ? `is owned by uid ${info.uid}` : `is writable by group or others (mode ${octal(info.mode)})`
    }: whoever can write it can replace the store directory. Move the store or fix that directory`,
    { ancestor: parent, uid: info.uid, mode: octal(info.mode) },
  );
}
