/**
 * What the environment changes in a configuration file, and secrets read from files.
 *
 * Overrides: `CERTKEEPER__<SEGMENT>__<SEGMENT>…=<value>` sets one setting. Segments are separated
 * by a double underscore; within a segment a single underscore starts a capital letter
 * (`ENCRYPTION_KEY` is `encryptionKey`); in a list, a segment is an element's `id` or its index.
 * The value is read as a YAML scalar or flow collection (`true`, `8080`, `[a.test, b.test]`).
 * `CERTKEEPER_STORE` and `CERTKEEPER_ENCRYPTION_KEY` (what the other commands read) set
 * `store.url` and `store.encryptionKey`.
 *
 * Secrets: each secret setting `x` may be given as `xFile`, a path whose content (without its
 * trailing newline) is the value, for Docker and Kubernetes secrets; giving both is an error. An
 * override of one form replaces the other form from the file.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { optionError } from '../errors.js';
import { join, type Plain } from './config-read.js';

export const OVERRIDE_PREFIX = 'CERTKEEPER__';

/** Settings whose value is a secret, anywhere in the file: each also accepts `<name>File`. */
export const SECRET_SETTINGS = ['url', 'encryptionKey', 'hmacKey', 'secret', 'password'] as const;

const AS_WRITTEN = new Set<string>([...SECRET_SETTINGS, 'id', 'token', 'directory']);

function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** An id as it can appear in a variable name: lower case, other characters as `_`. */
function idSegment(id: unknown): string {
  return String(id ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '_');
}

function envError(variable: string, problem: string): never {
  throw optionError(variable, problem, 'environment', { variable });
}

function isMapping(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Applies the overrides of `env` to `config` (changed in place). */
export function applyOverrides(config: Plain, env: Readonly<Record<string, string | undefined>>): void {
  const set = (path: string[], value: unknown, variable: string) => {
    let node: unknown = config;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i]!;
      const last = i === path.length - 1;
      if (Array.isArray(node)) {
        const index = /^\d+$/.test(segment)
          ? Number(segment)
          : node.findIndex((e) => isMapping(e) && idSegment(e.id) === segment.toLowerCase());
        if (index < 0 || index >= node.length)
          envError(variable, `names no element "${segment}" of the list (by id or index)`);
        if (last) node[index] = value;
        else node = node[index];
        continue;
      }
      if (!isMapping(node)) envError(variable, `goes below a setting that is not a mapping or list`);
      const key = camel(segment);
      if (last) {
        node[key] = value;
        // One form of a secret replaces the other form given in the file.
        const other = key.endsWith('File') ? key.slice(0, -4) : `${key}File`;
        for (const k of Object.keys(node)) if (k === other) delete node[k];
      } else {
        node[key] ??= {};
        node = node[key];
      }
    }
  };
  // `store: <url>` is short for `store: { url: <url> }`: overrides go below it.
  if (typeof config.store === 'string') config.store = { url: config.store };
  if (env.CERTKEEPER_STORE?.trim()) set(['STORE', 'URL'], env.CERTKEEPER_STORE.trim(), 'CERTKEEPER_STORE');
  if (env.CERTKEEPER_ENCRYPTION_KEY?.trim())
    set(['STORE', 'ENCRYPTION_KEY'], env.CERTKEEPER_ENCRYPTION_KEY.trim(), 'CERTKEEPER_ENCRYPTION_KEY');
  const overrides = Object.keys(env)
    .filter((k) => k.startsWith(OVERRIDE_PREFIX) && env[k] !== undefined)
    .sort();
  for (const variable of overrides) {
    const rest = variable.slice(OVERRIDE_PREFIX.length);
    const path = rest.split('__').map((s) => s.trim());
    if (path.some((s) => s === '')) envError(variable, 'has an empty path segment');
    const raw = env[variable]!;
    const key = camel(path[path.length - 1]!);
    // A secret, a file path, a URL, an id or a token stays text even when it looks like a number.
    const textual = AS_WRITTEN.has(key) || key.endsWith('File');
    let value: unknown = raw;
    if (!textual) {
      try {
        value = parse(raw);
      } catch {
        envError(variable, 'holds a value that is not a YAML scalar or flow collection');
      }
    }
    set(path, value, variable);
  }
}

/** Replaces every `<secret>File` setting by the file's content (relative paths from `baseDir`). */
export function readSecretFiles(config: unknown, baseDir: string, file: string, path = ''): void {
  if (Array.isArray(config)) {
    config.forEach((item, i) => {
      readSecretFiles(item, baseDir, file, join(path, i));
    });
    return;
  }
  if (!isMapping(config)) return;
  for (const name of SECRET_SETTINGS) {
    const fileKey = `${name}File`;
    if (!(fileKey in config)) continue;
    const where = join(path, fileKey);
    if (name in config)
      throw optionError(where, `and ${join(path, name)} are both given: give one`, file, { file });
    const target = config[fileKey];
    if (typeof target !== 'string' || target === '')
      throw optionError(where, 'must be a file path', file, { file });
    let text: string;
    try {
      text = readFileSync(resolve(baseDir, target), 'utf8');
    } catch (error) {
      throw optionError(
        where,
        `names a file that cannot be read: ${target} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        file,
        { file },
      );
    }
    const value = text.replace(/\r?\n$/, '');
    if (value.trim() === '') throw optionError(where, `names an empty file: ${target}`, file, { file });
    delete config[fileKey];
    config[name] = value;
  }
  for (const [key, value] of Object.entries(config)) readSecretFiles(value, baseDir, file, join(path, key));
}
