// `npm start` as a user runs it: `node examples/demo.mjs` from the repository root (it imports
// 'certkeeper', i.e. the built ./dist), read what it prints, Ctrl-C it, and check that it rotated,
// served every request, exited cleanly and removed its temporary store.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, expect, it } from 'vitest';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

let child: ChildProcess | undefined;
let scratch: string | undefined;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

beforeAll(() => {
  if (!existsSync(join(root, 'dist/index.js'))) {
    throw new Error('dist/index.js is missing: the demo imports the built package (run `npm run build`)');
  }
});

interface Demo {
  child: ChildProcess;
  tmp: string;
  lines: string[];
  stderr: () => string;
  /** Resolves with the first line matching `pattern` among those printed so far or later. */
  waitFor: (pattern: RegExp, count: number, ms: number) => Promise<string[]>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(env: Record<string, string>): Demo {
  const tmp = mkdtempSync(join(tmpdir(), 'certkeeper-demo-test-'));
  scratch = tmp;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, TMPDIR: tmp };
  delete childEnv.CERTKEEPER_DEMO_DURATION_MS;
  const proc = spawn(process.execPath, ['examples/demo.mjs'], {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const wake of waiters) wake();
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    proc.on('exit', (code, signal) => {
      if (partial) lines.push(partial);
      partial = '';
      for (const wake of waiters) wake();
      done({ code, signal });
    });
  });
  const transcript = () => `stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`;
  const waitFor = (pattern: RegExp, count: number, ms: number) =>
    new Promise<string[]>((done, fail) => {
      const check = () => {
        const found = lines.filter((l) => pattern.test(l));
        if (found.length >= count) finish(() => done(found));
        else if (proc.exitCode !== null || proc.signalCode !== null) {
          finish(() => fail(new Error(`demo exited before printing ${count} × ${pattern}\n${transcript()}`)));
        }
      };
      const timer = setTimeout(
        () => finish(() => fail(new Error(`no ${count} × ${pattern} within ${ms} ms\n${transcript()}`))),
        ms,
      );
      const finish = (then: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        then();
      };
      waiters.add(check);
      check();
    });
  return { child: proc, tmp, lines, stderr: () => stderr, waitFor, exited };
}

function get(port: number): Promise<{ status: number | undefined; body: string; cn: string | undefined }> {
  return new Promise((done, fail) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        agent: false,
        path: '/',
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        const cn = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN;
        const cnText = Array.isArray(cn) ? cn.join(',') : cn;
        res.on('end', () => done({ status: res.statusCode, body, cn: cnText }));
      },
    );
    req.on('error', fail);
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([
    promise,
    new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`${what} within ${ms} ms`)), ms)),
  ]);

it('rotates under a client loop with no failures, stops on Ctrl-C and removes its store', async () => {
  const demo = startDemo({ PORT: '0', CERTKEEPER_DEMO_LIFETIME_MS: '4000' });

  const [serving] = await demo.waitFor(/^serving https:\/\/localhost:\d+\//, 1, 20_000);
  const port = Number(/localhost:(\d+)\//.exec(serving!)![1]);
  expect(port).toBeGreaterThan(0);
  expect(port).not.toBe(8443); // PORT=0 means "any free port", not the default
  expect(serving).toMatch(/certificates living 4 s/);
  // The URL it prints works, with its certificate for localhost.
  expect(await get(port)).toEqual({ status: 200, body: 'ok', cn: 'localhost' });
  // Its store lives in the temporary directory (so the removal checked below means something).
  expect(readdirSync(demo.tmp).filter((n) => n.startsWith('certkeeper-demo-'))).toHaveLength(1);

  const rotations = await demo.waitFor(/^rotation \d+:/, 2, 20_000);
  demo.child.kill('SIGINT');
  const { code, signal } = await withTimeout(demo.exited, 15_000, 'the demo did not exit after SIGINT');
  const transcript = `stdout:\n${demo.lines.join('\n')}\nstderr:\n${demo.stderr()}`;
  expect({ code, signal }, transcript).toEqual({ code: 0, signal: null });

  const last = demo.lines.filter((l) => l.trim() !== '').at(-1)!;
  const stopped = /^stopped \(SIGINT\): rotations (\d+)\s+requests (\d+)\s+failures (\d+)$/.exec(last);
  expect(stopped, transcript).not.toBeNull();
  const [count, requests, failures] = stopped!.slice(1).map(Number) as [number, number, number];
  expect(failures).toBe(0);
  expect(requests).toBeGreaterThan(0);
  expect(count).toBeGreaterThanOrEqual(2);

  // Every rotation line, numbered 1..count, each with a new serial and no failed request so far.
  const rotationLines = demo.lines.filter((l) => /^rotation \d+:/.test(l));
  expect(rotationLines.length).toBeGreaterThanOrEqual(rotations.length);
  expect(rotationLines).toHaveLength(count);
  const serial = (line: string) => /serial ([0-9a-f]+)/.exec(line)?.[1];
  const obtained = demo.lines.filter((l) => /^obtained\s+serial/.test(l));
  expect(obtained, transcript).toHaveLength(1);
  const serials = [serial(obtained[0]!), ...rotationLines.map(serial)];
  rotationLines.forEach((line, i) => {
    expect(line).toMatch(new RegExp(`^rotation ${i + 1}: serial [0-9a-f]{16,}\\s`));
    expect(line).toMatch(/verified on 1\/1 server/);
    expect(line).toMatch(/failures 0$/);
  });
  for (let i = 1; i < serials.length; i++) {
    expect(serials[i], `rotation ${i}`).toBeDefined();
    expect(serials[i], `rotation ${i}`).not.toBe(serials[i - 1]);
  }
  expect(new Set(serials).size).toBe(serials.length);
  expect(demo.lines.join('\n')).not.toMatch(/renewal failed|rolled back/);

  // The temporary store (CA keys included) is gone.
  expect(readdirSync(demo.tmp)).toEqual([]);
}, 40_000);
