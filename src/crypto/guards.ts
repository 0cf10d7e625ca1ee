/**
 * Input checks shared by the toolkit functions. The toolkit is public API fed with whatever an
 * application, a store or a CA hands over: a wrong type, a huge string or a value whose own
 * `toString` throws must end as a typed error naming the input, never as a TypeError from deep
 * inside Node or a parser.
 */
import { CertkeeperError, type ErrorCode } from '../errors.js';

/** Names the shape of any value without calling anything on it (its toString may throw). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** PEM text from a string or bytes; anything else is `code` (default MALFORMED_PEM). */
export function textOf(value: unknown, what: string, code: ErrorCode = 'MALFORMED_PEM'): string {
  if (typeof value === 'string') return value;
  if (isBytes(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  throw new CertkeeperError(code, `${what}: expected PEM text or bytes, got ${describeValue(value)}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isBytes(value);
}
