// FileStore locks between real processes: two children contend through one directory, and a
// child killed with SIGKILL while holding the lock loses it only when its lease lapses.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';

const worker = fileURLToPath(new URL('../support/lock-worker.mjs', import.meta.url));
const LOCK = 'shared/lock';

describe('FileStore locks across processes', () => {
  let root: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'certkeeper-proc-'));
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(root, { recursive: true, force: true });
  });

  function start(args: string[]): ChildProcess {
    const child = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return child;
  }

  function exited(child: ChildProcess, ms: number): Promise<{ code: number | null; stderr: string }> {
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${child.pid} still running after ${ms} ms`)),
        ms,
      );
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
  }

  function firstLine(child: ChildProcess, ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no output from worker after ${ms} ms`)), ms);
      child.stdout?.on('data', (chunk) => {
        out += chunk;
        const newline = out.indexOf('\n');
        if (newline >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, newline));
        }
      });
      child.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
    });
  }

  it('two processes never hold the lock at once, and tokens strictly increase', async () => {
    const directory = join(root, 'store');
    const log = join(root, 'holders.log');
    await writeFile(log, '');
    const rounds = 25;
    const workers = [
      start(['contend', directory, log, String(rounds)]),
      start(['contend', directory, log, String(rounds)]),
    ];
    const results = await Promise.all(workers.map((child) => exited(child, 25_000)));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2 * 2 * rounds);
    let holder: { pid: string; token: number } | null = null;
    let lastToken = 0;
    let lastPid = '';
    let handovers = 0;
    const pids = new Set<string>();
    for (const line of lines) {
      const [event, pid, token] = line.split(' ') as [string, string, string];
      pids.add(pid);
      if (event === 'enter') {
        if (lastPid && lastPid !== pid) handovers++;
        lastPid = pid;
        expect(holder, `${line} while ${JSON.stringify(holder)} holds the lock`).toBeNull();
        expect(Number(token)).toBeGreaterThan(lastToken);
        lastToken = Number(token);
        holder = { pid, token: Number(token) };
      } else {
        expect(holder).toEqual({ pid, token: Number(token) });
        holder = null;
      }
    }
    expect(pids.size).toBe(2);
    // The processes really contended: the lock changed hands between them repeatedly.
    expect(handovers).toBeGreaterThanOrEqual(5);
  }, 30_000);

  it('a holder killed with SIGKILL keeps the lock until its lease lapses, then it is taken over', async () => {
    const directory = join(root, 'store');
    const ttlMs = 1_500;
    const child = start(['hold', directory, String(ttlMs)]);
    const held = JSON.parse(await firstLine(child, 10_000)) as { token: number; expiresAt: number };
    child.kill('SIGKILL');
    await exited(child, 5_000);

    const store = new FileStore({ directory });
    try {
      expect(await store.tryLock(LOCK), 'the dead holder’s lease is still running').toBeNull();
      const lease = await store.lock(LOCK, { ttlMs: 10_000, signal: AbortSignal.timeout(10_000) });
      const acquiredAt = Date.now();
      expect(acquiredAt, 'acquired before the lease lapsed').toBeGreaterThanOrEqual(held.expiresAt);
      // Polling backs off to 250 ms at most; allow for a slow machine on top.
      expect(acquiredAt - held.expiresAt).toBeLessThan(1_500);
      expect(lease.token).toBeGreaterThan(held.token);
      expect(await store.unlock(lease)).toBe(true);
    } finally {
      await store.close();
    }
  }, 20_000);
});
