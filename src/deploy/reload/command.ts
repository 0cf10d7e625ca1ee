/**
 * Reload by running a program: argv (no shell, so no quoting surprises), its own environment on
 * top of ours, a time limit after which it is killed, its output captured. A non-zero exit, a
 * signal or the time limit is `DEPLOY_FAILED` carrying the tail of the output, scrubbed: reload
 * commands print configuration errors, and a misconfigured one may print a key.
 */
import { spawn } from 'node:child_process';
import { CertkeeperError, optionError, scrubSecrets } from '../../errors.js';
import type { ReloadAction, ReloadContext } from './action.js';

export interface CommandOptions {
  /** Program and arguments; `{fullchain}`, `{privkey}`, ... are replaced by the set's stable paths. */
  argv: readonly string[];
  /** Added to the environment certkeeper runs with. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Killed (SIGKILL) after this long. Default 30 000 ms. */
  timeoutMs?: number;
  /** Shown in errors instead of the argv. */
  description?: string;
}

/** What a finished command left behind. */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Output kept for the error: the end of it, where programs say what went wrong. */
const KEEP_OUTPUT = 4096;

function validate(options: CommandOptions, owner: string): void {
  if (
    !Array.isArray(options?.argv) ||
    options.argv.length === 0 ||
    options.argv.some((a) => typeof a !== 'string')
  ) {
    throw optionError('argv', 'must be a non-empty array of strings', owner);
  }
  if (options.timeoutMs !== undefined && !(Number.isInteger(options.timeoutMs) && options.timeoutMs > 0)) {
    throw optionError('timeoutMs', 'must be a positive integer (ms)', owner);
  }
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (typeof value !== 'string') throw optionError(`env.${name}`, 'must be a string', owner);
  }
}

/** Runs argv to completion; never throws for a failing program (the result says how it ended). */
export function runCommand(
  argv: readonly string[],
  options: { env?: Readonly<Record<string, string>>; cwd?: string; timeoutMs?: number; signal?: AbortSignal },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-KEEP_OUTPUT * 2);
    };
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: options.signal,
    });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output: `${output}${error.message}`, timedOut });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

/** Replaces `{kind}` placeholders with the set's stable paths. */
function expand(argv: readonly string[], context: ReloadContext): string[] {
  return argv.map((arg) =>
    arg.replace(/\{(fullchain|privkey|chain|cert|combined|trust|pkcs12|id)\}/g, (whole, kind: string) => {
      if (kind === 'id') return context.id;
      return context.paths[kind as keyof typeof context.paths] ?? whole;
    }),
  );
}

/** Throws DEPLOY_FAILED unless `result` is a clean exit. */
export function assertSucceeded(result: CommandResult, description: string, timeoutMs: number): void {
  if (result.code === 0 && !result.timedOut) return;
  const how = result.timedOut
    ? `timed out after ${timeoutMs} ms`
    : result.signal
      ? `was killed by ${result.signal}`
      : result.code === null
        ? 'could not start'
        : `exited with ${result.code}`;
  const output = scrubSecrets(result.output.trim()).slice(-KEEP_OUTPUT);
  throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} ${how}${output ? `: ${output}` : ''}`, {
    details: {
      reload: description,
      exitCode: result.code,
      signal: result.signal,
      timedOut: result.timedOut,
      output,
    },
  });
}

/** A reload action that runs a program. */
export function commandReload(options: CommandOptions): ReloadAction {
  validate(options, 'commandReload');
  const argv = [...options.argv];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const description = options.description ?? argv.join(' ');
  return {
    description,
    async run(context) {
      const result = await runCommand(expand(argv, context), {
        env: options.env,
        cwd: options.cwd,
        timeoutMs,
        signal: context.signal,
      });
      assertSucceeded(result, description, timeoutMs);
    },
  };
}
