/**
 * Reading a parsed configuration file field by field: every check names the field's path in
 * the file (`certificates[1].names[0]`) and the file, so a typo fails at start-up with an
 * INVALID_OPTION error that says where to look. Unknown keys are refused: a misspelt one would
 * silently keep a default.
 */
import { optionError } from '../errors.js';

export type Plain = Record<string, unknown>;

export class FieldReader {
  constructor(
    /** Shown in every message: the configuration file's path. */
    readonly file: string,
  ) {}

  fail(path: string, problem: string): never {
    throw optionError(path, problem, this.file, { file: this.file });
  }

  object(value: unknown, path: string, known: readonly string[]): Plain {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path, 'must be a mapping (key: value)');
    for (const key of Object.keys(value)) {
      if (!known.includes(key))
        this.fail(join(path, key), `is not a known setting (known here: ${known.join(', ')})`);
    }
    return value as Plain;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'must be a list');
    return value;
  }

  string(value: unknown, path: string, pattern?: RegExp, bound?: string): string {
    if (typeof value !== 'string' || value.length === 0) this.fail(path, 'must be a non-empty string');
    if (pattern && !pattern.test(value)) this.fail(path, bound ?? `must match ${pattern}`);
    return value;
  }

  optionalString(value: unknown, path: string, pattern?: RegExp, bound?: string): string | undefined {
    return value === undefined ? undefined : this.string(value, path, pattern, bound);
  }

  boolean(value: unknown, path: string, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(path, 'must be true or false');
    return value;
  }

  integer(value: unknown, path: string, min: number, max: number): number | undefined {
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
      this.fail(path, `must be an integer in ${min}..${max}`);
    return value as number;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !allowed.includes(value as T))
      this.fail(path, `must be one of ${allowed.join(', ')}`);
    return value as T;
  }

  /** A duration: milliseconds as a number, or `90d`, `24h`, `15m`, `30s`, `500ms`. */
  duration(value: unknown, path: string, minMs = 1000): number | undefined {
    if (value === undefined) return undefined;
    let ms: number | undefined;
    if (typeof value === 'number') ms = value;
    else if (typeof value === 'string') {
      const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
      if (match) ms = Number(match[1]) * UNIT_MS[match[2]!]!;
    }
    if (ms === undefined || !Number.isFinite(ms))
      this.fail(path, 'must be a duration: milliseconds, or a number with ms, s, m, h or d (e.g. 24h)');
    if (ms < minMs) this.fail(path, `must be at least ${minMs} ms`);
    return Math.round(ms);
  }

  /** A list of strings, or one string standing for a list of one. */
  strings(value: unknown, path: string): string[] {
    const list = typeof value === 'string' ? [value] : this.array(value, path);
    return list.map((item, i) => this.string(item, `${path}[${i}]`));
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}
