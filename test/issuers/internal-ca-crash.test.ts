// kill -9 in the middle of a CA state change: a real child process (internal-ca-crash-worker.ts)
// rotates the intermediate and is killed by SIGKILL when its hook reports the k-th store write
// of the rotation is about to happen. The restarted manager must take the dead process's CA lock
// once its lease (the manager's lockTtlMs) has lapsed and issue under the same root, from a
// consistent CA: the old intermediate or the new one, never a key of one with the other.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { FileStore } from '../../src/store/file-store.js';
import { caFile, cleanupAfterEach, opensslVerify, tempDir, text } from './internal-ca-support.js';

cleanupAfterEach();

const here = dirname(fileURLToPath(import.meta.url));
const LOCK_TTL_MS = 2_000;
const bundles: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const file of bundles) rmSync(file, { force: true });
});

let program: Promise<string> | undefined;
/** The worker bundled from the current src/ (not dist/, which may be stale). */
function workerProgram(): Promise<string> {
  program ??= (async () => {
    const { build } = await import('esbuild');
    const dir = join(here, '../../node_modules/.cache/certkeeper-ca-crash');
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, `worker-${process.pid}-${randomUUID().slice(0, 8)}.mjs`);
    bundles.push(outfile);
    await build({
      entryPoints: [join(here, 'internal-ca-crash-worker.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
    });
    return outfile;
  })();
  return program;
}

type WorkerMessage = { type: 'ready'; root: string } | { type: 'paused'; key: string } | { type: 'done' };

/** The next message from `child` (bounded: a worker that never reports fails the test). */
function next(child: ChildProcess, output: () => string): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker silent for 15 s:\n${output()}`)), 15_000);
    const onMessage = (m: WorkerMessage) => done(undefined, m);
    const onExit = (code: number | null) => done(new Error(`worker exited (${code}):\n${output()}`));
    function done(error?: Error, message?: WorkerMessage) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message!);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

describe('kill -9 during an intermediate rotation', () => {
  it.each([1, 2, 3, 4])(
    'killed before write %i: the restart takes the CA lock after lockTtlMs and issues under the same root',
    async (killBefore) => {
      const directory = tempDir();
      let output = '';
      const child = fork(await workerProgram(), [], {
        env: {
          ...process.env,
          CERTKEEPER_CRASH: JSON.stringify({ directory, killBefore, lockTtlMs: LOCK_TTL_MS }),
        },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      children.add(child);
      for (const stream of [child.stdout!, child.stderr!])
        stream.setEncoding('utf8').on('data', (c) => (output += c));
      const exited = new Promise((resolve) => child.once('exit', resolve));

      const ready = await next(child, () => output);
      expect(ready.type).toBe('ready');
      const root = (ready as { root: string }).root;
      const moment = await next(child, () => output);
      expect(['paused', 'done']).toContain(moment.type);
      child.kill('SIGKILL');
      await exited;
      children.delete(child);

      // The restart: same directory, same configuration.
      const store = new FileStore({ directory });
      const ca = new InternalCA();
      const manager = createCertificateManager({
        store,
        issuer: ca,
        certificates: [{ id: 'web', names: ['localhost'] }],
        lockTtlMs: LOCK_TTL_MS,
        logger: silentLogger,
        clock: systemClock,
      });
      await manager.start();
      await manager.ready();
      const served = manager.certificate('web')!.serial;
      await manager.renewNow('web');
      const chainPem = manager.certificate('web')!.chainPem;
      expect(manager.certificate('web')!.serial).not.toBe(served);
      const [leaf, intermediate] = parseCertificates(chainPem);
      expect(
        opensslVerify({ root, intermediate: intermediate!.pem, leaf: leaf!.pem }, 'sslserver'),
      ).toMatchObject({
        ok: true,
      });
      expect(await ca.publishedRoots()).toEqual([root]);
      // The readable copy of the intermediate is the one that signs (repaired if the kill left it stale).
      expect(text(await store.get(caFile(ca, 'intermediate.pem')))).toBe(intermediate!.pem);
      await manager.stop();
    },
    30_000,
  );
});
