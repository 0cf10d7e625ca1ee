// Temp files of FileStore writers killed with SIGKILL in the middle of a write: each holds a whole
// private key, and nothing removed them. The writers are real processes, killed at the moment the
// temp file is complete (a hook on fsync reports it), never after a sleep.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOST_TAG, PROCESS_TAG } from '../../src/store/file-io.js';
import { FileStore } from '../../src/store/file-store.js';
import { eventually } from '../support/services.js';

const worker = fileURLToPath(new URL('../support/store-writer.mjs', import.meta.url));
const PEM = `-----BEGIN PRIVATE KEY-----\n${'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg'.repeat(4)}\n-----END PRIVATE KEY-----\n`;
const GENERATION = 'certificates/internal/a.example';

/** Every temp file below `dir`, relative to it. */
async function tempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.startsWith('.tmp-'))
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

describe('FileStore temp files left by writers killed mid-write', () => {
  let root: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'certkeeper-temp-'));
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(root, { recursive: true, force: true });
  });

  /** Starts a writer and resolves once its temp file holds the whole value (it then hangs). */
  async function writerHolding(directory: string, key: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, [worker, directory, key, PEM], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer reported nothing: ${stderr}`)), 15_000);
      let out = '';
      child.stdout?.on('data', (chunk) => {
        out += chunk;
        if (out.startsWith('written ')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`writer exited with ${code}: ${stderr}`)));
    });
    return child;
  }

  async function kill(child: ChildProcess): Promise<void> {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  it('are removed at start and by sweep() once stale, never while their writer lives', async () => {
    const directory = join(root, 'store');
    const first = new FileStore({ directory });
    await first.put(`${GENERATION}/00/cert.pem`, 'CERT');
    await first.close();

    for (const serial of ['01', '02', '03']) {
      await kill(await writerHolding(directory, `${GENERATION}/${serial}/key.pem`));
    }
    const live = await writerHolding(directory, `${GENERATION}/04/key.pem`);
    const left = await tempFiles(directory);
    expect(left).toHaveLength(4);
    // What is at stake: each one holds the whole private key, in plain text.
    for (const temp of left) expect(await readFile(join(directory, temp), 'utf8')).toBe(PEM);

    // Time passing is simulated: every temp file is made older than the bound.
    const old = new Date(Date.now() - 60 * 60_000);
    for (const temp of left) await utimes(join(directory, temp), old, old);
    const liveTemp = left.find((temp) => temp.startsWith(`${GENERATION}/04/`))!;
    expect(liveTemp).toBeDefined();
    // A young temp file (another host's writer, an older name format) may still be live: it stays.
    await writeFile(join(directory, GENERATION, '.tmp-young'), 'partial');
    const young = `${GENERATION}/.tmp-young`;

    // Left by an earlier process that had this very pid (a container's pid 1 after a restart): it
    // goes. One of this process's own writes in flight (its tag) stays.
    const reused = `${GENERATION}/01/.tmp-${process.pid}.${HOST_TAG}.0badc0de.${randomUUID()}`;
    const ours = `${GENERATION}/01/.tmp-${process.pid}.${HOST_TAG}.${PROCESS_TAG}.${randomUUID()}`;
    for (const planted of [reused, ours]) {
      await writeFile(join(directory, planted), PEM);
      await utimes(join(directory, planted), old, old);
    }

    const store = new FileStore({ directory });
    try {
      // Start-up: the first operation opens the directory and sweeps it.
      expect(new TextDecoder().decode((await store.get(`${GENERATION}/00/cert.pem`))!)).toBe('CERT');
      const swept = await eventually(async () => (await tempFiles(directory)).length === 3, 10_000);
      expect(swept, `left: ${(await tempFiles(directory)).join(', ')}`).toBe(true);
      expect(await tempFiles(directory)).toEqual([young, liveTemp, ours].sort());
      expect(await store.list(GENERATION)).toEqual([`${GENERATION}/00/cert.pem`]);

      // The maintenance pass after the live writer dies removes its file too.
      await kill(live);
      expect(await store.sweep()).toBe(1);
      expect(await tempFiles(directory)).toEqual([young, ours].sort());
    } finally {
      await store.close();
    }
  }, 60_000);
});
