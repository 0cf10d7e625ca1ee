/**
 * What every subcommand shares: its result as data (printed by index.ts, so commands are
 * tested in-process), the environment it reads (injected, never `process.env` directly), exit
 * codes, and turning errors into one line that carries the error code and no secret.
 */
import { isCertkeeperError, scrubSecrets } from '../errors.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliContext {
  /** The environment to read (`process.env` in the binary, an object in tests). */
  env: Readonly<Record<string, string | undefined>>;
  /** Relative paths resolve from here. */
  cwd: string;
  now: () => number;
}

/** Exit codes, as `certkeeper --help` documents them. */
export const EXIT = {
  OK: 0,
  /** The command failed: store unreachable or unreadable, nothing found, a tool failed. */
  FAILURE: 1,
  /** Wrong usage: unknown command or option, missing argument. */
  USAGE: 2,
  /** `status`: a certificate needs attention (expired, not yet valid, or its stored entry is damaged). */
  ATTENTION: 3,
} as const;

export const ok = (stdout: string, stderr = ''): CommandResult => ({ code: EXIT.OK, stdout, stderr });

export function usage(command: string, message: string, help: string): CommandResult {
  return { code: EXIT.USAGE, stdout: '', stderr: `certkeeper ${command}: ${message}\n\n${help}` };
}

/** One line for a failure: the message and code of a CertkeeperError, scrubbed; never a stack. */
export function describe(error: unknown): string {
  if (isCertkeeperError(error)) return `${scrubSecrets(error.message)} (${error.code})`;
  return scrubSecrets(error instanceof Error ? error.message : String(error));
}

export function failed(command: string, error: unknown): CommandResult {
  return { code: EXIT.FAILURE, stdout: '', stderr: `certkeeper ${command}: ${describe(error)}\n` };
}

/** parseArgs' own messages quote what was typed, which may be a secret given to the wrong option. */
export function parseError(command: string, error: unknown, help: string): CommandResult {
  return usage(command, scrubSecrets(error instanceof Error ? error.message : String(error)), help);
}
