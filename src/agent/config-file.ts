/**
 * Loading the agent's configuration file: YAML or JSON (JSON is read as the YAML subset it is),
 * then the environment's overrides, then secrets read from files, then validation. Nothing is
 * started here, so `certkeeper agent` refuses a bad file before it touches the store, and a
 * SIGHUP with a bad file leaves the running configuration alone.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { optionError } from '../errors.js';
import { type AgentConfig, validateConfig } from './config.js';
import { applyOverrides, readSecretFiles } from './config-env.js';

export interface LoadOptions {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

/** Parses configuration text; `file` names it in messages and anchors relative secret paths. */
export function parseAgentConfig(text: string, file: string, o: LoadOptions): AgentConfig {
  let raw: unknown;
  try {
    raw = parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const pos = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    // The parser quotes the offending line, which may hold a secret: only the position is kept.
    throw optionError('(file)', `is not valid YAML or JSON${where}`, file, { file });
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw optionError('(file)', 'must hold a mapping of settings', file, { file });
  applyOverrides(raw as Record<string, unknown>, o.env);
  readSecretFiles(raw, dirname(resolve(o.cwd, file)), file);
  return validateConfig(raw, file);
}

/** Reads and validates the configuration file at `path` (relative to `cwd`). */
export function loadAgentConfig(path: string, o: LoadOptions): AgentConfig {
  const file = resolve(o.cwd, path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw optionError(
      '--config',
      `names a configuration file that cannot be read: ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      undefined,
      { file },
    );
  }
  return parseAgentConfig(text, file, o);
}
