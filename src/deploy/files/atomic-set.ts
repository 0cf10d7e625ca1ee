/**
 * A certificate's file set, replaced as a whole. The layout is the one Kubernetes uses for
 * mounted secrets:
 *
 *   <dir>/..2026-12-03T18-20-00-123Z-1f2e/  one immutable directory per version
 *   <dir>/..data -> ..2026-12-03T18-20-00-123Z-1f2e
 *   <dir>/fullchain.pem -> ..data/fullchain.pem  (one stable link per file, made once)
 *
 * A new version is written completely (each file fsynced, then the directory) before one
 * rename(2) swaps `..data` to it. Whoever resolves `..data` once — opens files through
 * `realpath(<dir>/..data)`, or reads the combined file — sees one version, never a new
 * certificate with an old key; a file opened by its stable path is always a complete file of one
 * version. Two separate opens of two stable paths can straddle a flip (the same holds for
 * Kubernetes): a service is reloaded only after the flip, so its reload reads one version.
 *
 * The version replaced stays on disk (for rollback, and for readers still holding it open) and
 * older ones are pruned. Each version holds `.certkeeper.json` naming its certificate, so a
 * rollback finds the previous version by fingerprint instead of trusting which one is newest.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  chown,
  lchown,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  unlink,
} from 'node:fs/promises';
import { join } from 'node:path';
import { CertkeeperError, describeCause } from '../../errors.js';
import type { RenderedFile } from './layout.js';

export const DATA_LINK = '..data';
const MARKER = '.certkeeper.json';
const VERSION = /^\.\.\d{4}-\d\d-\d\dT[\d-]+Z-[0-9a-f]{8}$/;

export interface SetModes {
  /** Files holding the key. Default 0600. */
  key: number;
  /** Certificates. Default 0644. */
  cert: number;
  /** Version directories (readers must traverse them). Default 0755. */
  dir: number;
}

export interface SetOwner {
  uid?: number;
  gid?: number;
}

export interface VersionInfo {
  /** The version directory's name (`..<time>-<random>`). */
  version: string;
  fingerprint256: string;
}

function ioError(what: string, dir: string, cause: unknown): CertkeeperError {
  return new CertkeeperError('DEPLOY_FAILED', `${what} in ${dir}: ${describeCause(cause)}`, {
    cause,
    details: { dir },
  });
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function applyOwner(path: string, owner: SetOwner | undefined, link = false): Promise<void> {
  if (!owner || (owner.uid === undefined && owner.gid === undefined)) return;
  await (link ? lchown : chown)(path, owner.uid ?? -1, owner.gid ?? -1);
}

/** Replaces `name` in `dir` with a symlink to `to`, atomically (a new link, then rename). */
async function swapLink(dir: string, name: string, to: string): Promise<void> {
  const temp = join(dir, `..tmp-${randomBytes(4).toString('hex')}`);
  await symlink(to, temp);
  try {
    await rename(temp, join(dir, name));
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

function versionName(now: Date): string {
  return `..${now.toISOString().replaceAll(':', '-').replace('.', '-')}-${randomBytes(4).toString('hex')}`;
}

export class AtomicFileSet {
  constructor(
    readonly dir: string,
    readonly modes: SetModes,
    readonly owner?: SetOwner,
    /** Versions kept besides the current one. */
    readonly keep = 1,
  ) {}

  /** The version `..data` points at, or null when the set was never written. */
  async current(): Promise<VersionInfo | null> {
    let version: string;
    try {
      version = await readlink(join(this.dir, DATA_LINK));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError('reading the data link', this.dir, error);
    }
    return this.#describe(version);
  }

  /** Writes `files` as a new version, flips `..data` to it and prunes old versions. */
  async write(files: readonly RenderedFile[], fingerprint256: string): Promise<VersionInfo> {
    const version = versionName(new Date());
    const path = join(this.dir, version);
    try {
      await mkdir(this.dir, { recursive: true, mode: this.modes.dir });
      await mkdir(path, { mode: this.modes.dir });
      for (const file of files) {
        await this.#writeFile(
          join(path, file.name),
          file.content,
          file.secret ? this.modes.key : this.modes.cert,
        );
      }
      const marker = JSON.stringify({ fingerprint256, written: new Date().toISOString() });
      await this.#writeFile(join(path, MARKER), Buffer.from(marker), this.modes.cert);
      await applyOwner(path, this.owner);
      await syncDir(path);
    } catch (error) {
      await rm(path, { recursive: true, force: true }).catch(() => {});
      throw ioError('writing a new version', this.dir, error);
    }
    await this.flip(
      version,
      files.map((f) => f.name),
    );
    return { version, fingerprint256 };
  }

  /**
   * Points `..data` at `version` (which must exist), makes sure every stable link exists, and
   * prunes versions beyond `keep`, never the one flipped to or the one it replaced.
   */
  async flip(version: string, names: readonly string[]): Promise<void> {
    try {
      const replaced = await readlink(join(this.dir, DATA_LINK)).catch(() => null);
      await swapLink(this.dir, DATA_LINK, version);
      await applyOwner(join(this.dir, DATA_LINK), this.owner, true);
      for (const name of names) {
        const want = `${DATA_LINK}/${name}`;
        if ((await readlink(join(this.dir, name)).catch(() => null)) === want) continue;
        await swapLink(this.dir, name, want);
        await applyOwner(join(this.dir, name), this.owner, true);
      }
      await syncDir(this.dir);
      await this.#prune(version, replaced);
    } catch (error) {
      throw ioError('switching to a new version', this.dir, error);
    }
  }

  /** Flips back to the kept version holding `fingerprint256`; false when none does. */
  async restore(fingerprint256: string, names: readonly string[]): Promise<boolean> {
    for (const version of await this.#versions()) {
      const info = await this.#describe(version);
      if (info?.fingerprint256 !== fingerprint256) continue;
      await this.flip(version, names);
      return true;
    }
    return false;
  }

  /** Removes every version, the data link and the stable links named (nothing served any more). */
  async clear(names: readonly string[]): Promise<void> {
    try {
      for (const name of [...names, DATA_LINK]) await rm(join(this.dir, name), { force: true });
      for (const version of await this.#versions())
        await rm(join(this.dir, version), { recursive: true, force: true });
    } catch (error) {
      throw ioError('removing the set', this.dir, error);
    }
  }

  /** The version directories, newest first (their names sort by creation time). */
  async #versions(): Promise<string[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    return entries
      .filter((e) => VERSION.test(e))
      .sort()
      .reverse();
  }

  async #describe(version: string): Promise<VersionInfo | null> {
    try {
      const marker = JSON.parse(await readFile(join(this.dir, version, MARKER), 'utf8')) as {
        fingerprint256?: unknown;
      };
      if (typeof marker.fingerprint256 !== 'string') return null;
      return { version, fingerprint256: marker.fingerprint256 };
    } catch {
      return null;
    }
  }

  async #prune(current: string, replaced: string | null): Promise<void> {
    const others = (await this.#versions()).filter((v) => v !== current && v !== replaced);
    const room = Math.max(0, this.keep - (replaced && replaced !== current ? 1 : 0));
    for (const version of others.slice(room)) {
      await rm(join(this.dir, version), { recursive: true, force: true });
    }
  }

  async #writeFile(path: string, content: Buffer, mode: number): Promise<void> {
    // O_EXCL: a fresh version directory holds nothing yet; anything there is not ours.
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await handle.chmod(mode); // the umask may have narrowed or widened nothing we asked for
      await handle.writeFile(content);
      await handle.sync();
      if (this.owner) await handle.chown(this.owner.uid ?? -1, this.owner.gid ?? -1);
    } finally {
      await handle.close();
    }
  }
}
