// A real, tiny tmpfs for tests that need the kernel to say ENOSPC or EROFS. Mounting needs root;
// elsewhere the tests skip loudly, except under CI, where a skip would hide a missing guarantee.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  /** The mount point. */
  dir: string;
  readOnly(): void;
  readWrite(): void;
  unmount(): void;
}

function run(args: string[]): void {
  execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
}

/** Mounts a tmpfs of `sizeKiB`, or returns null (after a warning) when this machine cannot. */
export function mountTmpfs(sizeKiB: number): Tmpfs | null {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-tmpfs-'));
  let reason: string | undefined;
  if (process.getuid?.() !== 0) {
    reason = 'not running as root';
  } else {
    try {
      run(['mount', '-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir]);
    } catch (err) {
      reason = `mount failed: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  if (reason) {
    rmSync(dir, { recursive: true, force: true });
    const message = `tmpfs tests cannot run (${reason}): ENOSPC/EROFS behaviour is NOT being tested`;
    if (process.env.CI === 'true') throw new Error(message);
    console.warn(`\n!!! ${message}\n`);
    return null;
  }
  let mounted = true;
  return {
    dir,
    readOnly: () => run(['mount', '-o', 'remount,ro', dir]),
    readWrite: () => run(['mount', '-o', 'remount,rw', dir]),
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      run(['umount', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
