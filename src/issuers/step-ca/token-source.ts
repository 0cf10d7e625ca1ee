/**
 * Where the one-time token comes from: the option itself, an environment variable, or a file
 * (a Docker or Kubernetes secret). Sources are read each time a token is needed, never cached,
 * so a secret replaced on disk is picked up by the next attempt: a service whose certificate was
 * lost re-enrolls as soon as the orchestrator hands it a new token. `watch` tells when the file
 * changes, for callers that want to retry at once instead of waiting for the next backoff.
 */
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import { looksLikeJwt } from './token.js';

/** A token string, `{ value }`, `{ env: 'NAME' }` or `{ file: '/run/secrets/token' }`. */
export type TokenOption = string | { value: string } | { env: string } | { file: string };

type Resolved =
  | { kind: 'value'; value: string }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string };

const option = (path: string, problem: string) => optionError(path, problem, 'StepCaIssuer');

export class TokenSource {
  readonly #source: Resolved;
  readonly #watchers = new Set<() => void>();
  #onStat: ((curr: Stats, prev: Stats) => void) | undefined;

  constructor(input: TokenOption, path = 'token') {
    if (typeof input === 'string' || (typeof input === 'object' && input !== null && 'value' in input)) {
      const value = typeof input === 'string' ? input : input.value;
      // Never echo the value: it may be a real token with one typo.
      if (typeof value !== 'string' || !looksLikeJwt(value)) throw option(path, 'is not a compact JWT');
      this.#source = { kind: 'value', value: value.trim() };
    } else if (typeof input === 'object' && input !== null && 'env' in input) {
      if (typeof input.env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(input.env))
        throw option(`${path}.env`, 'must be an environment variable name');
      this.#source = { kind: 'env', name: input.env };
    } else if (typeof input === 'object' && input !== null && 'file' in input) {
      if (typeof input.file !== 'string' || input.file.length === 0)
        throw option(`${path}.file`, 'must be a file path');
      this.#source = { kind: 'file', path: input.file };
    } else {
      throw option(path, 'must be a token string, { env }, or { file }');
    }
  }

  /** Where the token is read from, for messages (never the token itself). */
  describe(): string {
    const s = this.#source;
    return s.kind === 'value'
      ? 'the token option'
      : s.kind === 'env'
        ? `environment variable ${s.name}`
        : `file ${s.path}`;
  }

  /** The current token, or null when the source holds none (unset variable, missing or empty file). */
  async read(): Promise<string | null> {
    const s = this.#source;
    let raw: string | undefined;
    if (s.kind === 'value') raw = s.value;
    else if (s.kind === 'env') raw = process.env[s.name];
    else {
      try {
        raw = await readFile(s.path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new CertkeeperError('TOKEN_MISSING', `cannot read the one-time token from ${this.describe()}`, {
          details: { reason: describeCause(error) },
        });
      }
    }
    const token = raw?.trim();
    return token ? token : null;
  }

  /**
   * Calls `listener` when the token file changes (polling its stat once a second, which also
   * sees the symlink swap Kubernetes uses for secrets). Returns an unsubscribe function. Other
   * sources never change while the process runs, so their watch is a no-op.
   */
  watch(listener: () => void, intervalMs = 1000): () => void {
    const s = this.#source;
    if (s.kind !== 'file') return () => {};
    this.#watchers.add(listener);
    if (!this.#onStat) {
      this.#onStat = (curr, prev) => {
        if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
        for (const fn of this.#watchers) fn();
      };
      watchFile(s.path, { interval: intervalMs, persistent: false }, this.#onStat);
    }
    return () => {
      this.#watchers.delete(listener);
      if (this.#watchers.size === 0) this.#unwatch();
    };
  }

  /** Stops watching the token file. Idempotent. */
  async close(): Promise<void> {
    this.#unwatch();
  }

  #unwatch(): void {
    const s = this.#source;
    // Only our own listener: another source may watch the same file.
    if (this.#onStat && s.kind === 'file') unwatchFile(s.path, this.#onStat);
    this.#onStat = undefined;
    this.#watchers.clear();
  }
}
