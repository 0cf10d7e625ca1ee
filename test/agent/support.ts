// Running the built `certkeeper agent` (dist/cli/index.js, `npm run build` first) as a child
// process: its log lines as they come, waiting for one, and HTTP requests to its health port.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(root, 'dist/cli/index.js');

export function assertBuilt(): void {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` before these tests`);
}

const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' });

/** Runs the command to its end. */
export function certkeeper(args: string[], cwd: string, env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [bin, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...baseEnv(), ...env },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

export interface RunningAgent {
  child: ChildProcess;
  /** Every log line so far, parsed (the agent runs with --log-format json). */
  lines: Record<string, unknown>[];
  /** Resolves with the first line (from `from` on) that `match` accepts; rejects after `timeoutMs`. */
  waitFor(
    match: (line: Record<string, unknown>) => boolean,
    from?: number,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function startAgent(args: string[], cwd: string, env: Record<string, string> = {}): RunningAgent {
  const child = spawn(process.execPath, [bin, 'agent', '--log-format', 'json', ...args], {
    cwd,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      // Every line is one JSON object: a line that is not fails the test that reads it.
      lines.push(text.startsWith('{') ? JSON.parse(text) : { notJson: text });
      nl = buffer.indexOf('\n');
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor: RunningAgent['waitFor'] = (match, from = 0, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.slice(from).find(match);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `no matching log line within ${timeoutMs} ms; lines: ${JSON.stringify(lines.slice(from))}`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    child,
    lines,
    waitFor,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

/** Polls `probe` until it returns a value (bounded). */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, tries = 120): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}
