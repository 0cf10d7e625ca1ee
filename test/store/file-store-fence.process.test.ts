// A FileStore holder that stalls in the middle of a fenced write, past its lease, while another
// process takes the lock over and commits: when it resumes, its write must be refused and the new
// holder's value stay. The holder is a real process stopped at the moment that matters (a hook
// on the fsync of its temp file, after the lease was checked and before the rename), not after a
// sleep; the lease it holds lapses on its own.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';

const worker = fileURLToPath(new URL('../support/fenced-writer.mjs', import.meta.url));
const LOCK = 'issue/web';
const KEY = 'certificates/internal/web/current.json';

let root: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'certkeeper-fence-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await rm(root, { recursive: true, force: true });
});

/** Resolves with each line the child prints, in order. */
function lineReader(child: ChildProcess): () => Promise<string> {
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let stderr = '';
  let buffer = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  child.stdout?.on('data', (chunk) => {
    buffer += chunk;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      const next = waiting.shift();
      if (next) next(line);
      else lines.push(line);
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      const line = lines.shift();
      if (line !== undefined) return resolve(line);
      const timer = setTimeout(() => reject(new Error(`no line from the writer: ${stderr}`)), 15_000);
      waiting.push((next) => {
        clearTimeout(timer);
        resolve(next);
      });
    });
}

it('a holder stalled between its fenced write’s check and its rename cannot overwrite the next holder’s commit', async () => {
  const directory = join(root, 'store');
  const child = spawn(process.execPath, [worker, directory, LOCK, KEY, '800'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const next = lineReader(child);
  expect(await next()).toMatch(/^paused \d+$/);

  const store = new FileStore({ directory });
  try {
    // The stalled holder's lease lapses on its own; this replica takes the lock over and commits.
    const lease = await store.lock(LOCK, { ttlMs: 30_000, signal: AbortSignal.timeout(10_000) });
    expect(new TextDecoder().decode((await store.get(KEY))!)).toBe('in time');
    await store.put(KEY, 'next holder', { fence: lease });

    child.stdin?.write('go\n');
    expect(await next()).toBe('result LOCK_LOST');
    expect(new TextDecoder().decode((await store.get(KEY))!)).toBe('next holder');
    // Its temp file went with its write slot: nothing of the stale value is left in the store.
    const left = await readdir(directory, { recursive: true });
    expect(left.filter((path) => path.includes('.tmp-'))).toEqual([]);
    expect(await store.unlock(lease)).toBe(true);
  } finally {
    await store.close();
  }
}, 30_000);
