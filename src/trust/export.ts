/**
 * Writing a trust bundle to a file for other processes in the container (a sidecar, `curl
 * --cacert`, a runtime that reads `SSL_CERT_FILE`). Readers must never see a half-written
 * bundle, so the file is replaced, never edited: a temp file in the same directory (same file
 * system, so the rename is atomic), fsync-ed, renamed over the target, then the directory
 * fsync-ed so the rename survives a crash. The primitives are FileStore's (store/file-io.ts).
 */
import { chmod, mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CertkeeperError, describeCause } from '../errors.js';
import { fsyncDirectory, writeTemp } from '../store/file-io.js';
import type { TrustBundle } from './bundle.js';

/** The bundle as one PEM text, anchors in bundle order. */
export function bundlePem(bundle: TrustBundle): string {
  return bundle.certificates.map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`)).join('');
}

/**
 * Atomically replaces `path` with the bundle. `mode` defaults to 0644: these are public
 * certificates, meant to be read by other users of the container.
 */
export async function writeBundleFile(path: string, bundle: TrustBundle, mode = 0o644): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  let temp: string | undefined;
  try {
    // A missing directory is made readable by others (0755), like the file: ensureDirectory's
    // 0700 is for private keys.
    await mkdir(dir, { recursive: true, mode: 0o755 });
    temp = await writeTemp(dir, bundlePem(bundle));
    await chmod(temp, mode);
    await rename(temp, target);
    temp = undefined;
    await fsyncDirectory(dir);
  } catch (error) {
    if (temp) await unlink(temp).catch(() => {});
    throw new CertkeeperError(
      'STORE_IO',
      `exporting the trust bundle to ${target} failed (${describeCause(error)})`,
      {
        cause: error,
        details: { path: target },
      },
    );
  }
}
