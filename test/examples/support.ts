// Runs an example as a user would (`node examples/<file>`, importing the built package by its
// name), reads what it prints, and stops it with SIGTERM as Ctrl-C would.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** The examples import the built package ('certkeeper' → dist/): it must be there. */
export function requireBuild(): void {
  if (!existsSync(join(root, 'dist/index.js'))) {
    throw new Error('dist/index.js is missing: the examples import the built package (run `npm run build`)');
  }
}

export interface Example {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of `pattern` in stdout, printed so far or later. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** SIGTERM (Ctrl-C), then the exit; SIGKILL if it does not exit within `ms`. */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
const scratch: string[] = [];

/** Starts `examples/<file>` with `env` added to the test's environment (`undefined` removes one). */
export function startExample(
  file: string,
  env: Record<string, string | undefined> = {},
  cwd = root,
): Example {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
  const child = spawn(process.execPath, [join(root, 'examples', file)], {
    cwd,
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  const wakers = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const wake of wakers) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      for (const wake of wakers) wake();
      done({ code, signal });
    }),
  );
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  const waitFor = (pattern: RegExp, ms = 60_000) =>
    new Promise<RegExpExecArray>((done, fail) => {
      const check = () => {
        const found = pattern.exec(stdout);
        if (found) return finish(() => done(found));
        if (child.exitCode !== null || child.signalCode !== null)
          finish(() => fail(new Error(`${file} exited before printing ${pattern}\n${output()}`)));
      };
      const timer = setTimeout(
        () => finish(() => fail(new Error(`no ${pattern} within ${ms} ms\n${output()}`))),
        ms,
      );
      const finish = (then: () => void) => {
        clearTimeout(timer);
        wakers.delete(check);
        then();
      };
      wakers.add(check);
      check();
    });
  const stop = async (ms = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    const result = await exited;
    clearTimeout(timer);
    return result;
  };
  return { child, output, waitFor, stop, exited };
}

/** A temp directory removed by cleanup(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `certkeeper-example-${prefix}-`));
  scratch.push(dir);
  return dir;
}

/** Kills what a failed test left running and removes its temp directories (for afterEach). */
export function cleanup(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Runs the `certkeeper` command of the built package. */
export function cli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return new Promise<string>((done, fail) =>
    execFile(
      process.execPath,
      [join(root, 'dist/cli/index.js'), ...args],
      { cwd: options.cwd ?? root, env: { ...process.env, ...options.env }, timeout: 60_000 },
      (error, stdout, stderr) => (error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout)),
    ),
  );
}

export interface Answer {
  status: number | undefined;
  body: string;
  serial: string;
  protocol: string | null;
}

/** GET over HTTPS to 127.0.0.1 as `servername`, trusting only `ca` (and presenting `cert`/`key` if given). */
export function httpsGet(
  port: number,
  path: string,
  options: { ca: string; servername?: string; cert?: string; key?: string },
): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: options.servername ?? 'localhost',
        headers: { host: options.servername ?? 'localhost' },
        ca: options.ca,
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        agent: false,
      },
      (res) => {
        const socket = res.socket as import('node:tls').TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber ?? '';
        const protocol = socket.getProtocol();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => done({ status: res.statusCode, body, serial: hexSerial(serial), protocol }));
      },
    );
    req.on('error', fail);
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
  });
}

/** A serial as certkeeper prints it and as Node reports it, compared: lower-case hex, no leading zeros. */
export function hexSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The embedded CA's root from a store directory, as a user gets it: `certkeeper export-root`. */
export function exportRoot(storeDir: string): Promise<string> {
  return cli(['export-root', '--store', storeDir]);
}
