// A put that finds a parent directory existing (mkdir: EEXIST) which a concurrent delete prunes
// before the put checks it: the put must make the directory again, not fail with ENOENT (an
// HTTP-01 `present` did, while another replica's `cleanup` emptied challenges/). The moment is
// hit exactly by removing the directory from inside the check itself.
import { mkdtemp, rm, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';

const hook = vi.hoisted(() => ({ before: undefined as ((path: string) => Promise<void>) | undefined }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    lstat: async (path: string, ...rest: unknown[]) => {
      await hook.before?.(path);
      return (real.lstat as (...args: unknown[]) => unknown)(path, ...rest);
    },
  };
});

const { FileStore } = await import('../../src/store/file-store.js');

let root: string | undefined;
afterEach(async () => {
  hook.before = undefined;
  if (root) await rm(root, { recursive: true, force: true });
});

it('a put whose parent directory is pruned between mkdir and its check makes it again', async () => {
  root = await mkdtemp(join(tmpdir(), 'certkeeper-race-'));
  const store = new FileStore({ directory: join(root, 'store') });
  try {
    // challenges/ exists (holding another answer) when the put's mkdir runs, so it sees EEXIST;
    // that answer's delete then prunes challenges/ right before the put checks it.
    await store.put('challenges/other-token', 'x');
    let pruned = 0;
    hook.before = async (path) => {
      if (pruned === 0 && path === join(root!, 'store', 'challenges')) {
        pruned++;
        await unlink(join(path, 'other-token'));
        await rmdir(path);
      }
    };
    await store.put('challenges/http-01/token', 'answer');
    expect(pruned).toBe(1);
    expect(new TextDecoder().decode((await store.get('challenges/http-01/token'))!)).toBe('answer');
  } finally {
    await store.close();
  }
});
