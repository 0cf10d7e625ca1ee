/**
 * The logger hook. certkeeper calls `logger.warn(message, fields)`; fields are names, serials,
 * fingerprints, durations and error codes, never key material.
 *
 * `toLogger` adapts the loggers people already have: pino and bunyan take `(fields, message)`,
 * winston takes `(message, meta)`, and `console` prints objects over several lines. The default
 * logger prints one line per call, logfmt or JSON (`CERTKEEPER_LOG_FORMAT=json`), so line-based
 * log collection never splits an entry.
 */
import { optionError, scrubSecrets } from './errors.js';

/** Where certkeeper logs: four levels, a message and structured fields (`toLogger` adapts pino, bunyan, winston, console). */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Line formats of the console logger. */
export type LogFormat = 'logfmt' | 'json';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** Environment variable choosing the console logger's format. */
export const LOG_FORMAT_ENV = 'CERTKEEPER_LOG_FORMAT';
/** Environment variable choosing the console logger's lowest level. */
export const LOG_LEVEL_ENV = 'CERTKEEPER_LOG_LEVEL';

/** Options of `createConsoleLogger`. */
export interface ConsoleLoggerOptions {
  /** Default: `CERTKEEPER_LOG_FORMAT` (`logfmt` or `json`), else logfmt. Read at each line when unset. */
  format?: LogFormat;
  /** Lowest level printed, or `silent`. Default: `CERTKEEPER_LOG_LEVEL`, else `warn` (a library stays quiet). */
  level?: LogLevel | 'silent';
  /** Where a finished line (with its newline) goes. Default: standard error. */
  write?: (line: string, level: LogLevel) => void;
}

/** Fields a line's own keys take precedence over; a field of that name is written with a `_` appended. */
const RESERVED = new Set(['time', 'level', 'logger', 'msg']);

function envLevel(): LogLevel | 'silent' {
  const value = process.env[LOG_LEVEL_ENV]?.trim().toLowerCase();
  return value === 'silent' || LEVELS.includes(value as LogLevel) ? (value as LogLevel | 'silent') : 'warn';
}

function envFormat(): LogFormat {
  return process.env[LOG_FORMAT_ENV]?.trim().toLowerCase() === 'json' ? 'json' : 'logfmt';
}

/** A field value as plain data: dates as ISO strings, errors as their code and message, text scrubbed. */
function plain(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : null;
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return scrubSecrets(typeof code === 'string' ? `${code}: ${value.message}` : value.message);
  }
  if (depth >= 4) return '[…]';
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as object)) {
    const p = plain(v, depth + 1);
    if (p !== undefined) out[k] = p;
  }
  return out;
}

function logfmtKey(key: string): string {
  const safe = key.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe === '' ? '_' : safe;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: a value with a control character must be quoted
const BARE = /^[^\s"=\\\u0000-\u001f\u007f]+$/;

function logfmtValue(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  // JSON string escaping keeps the whole entry on one line: newlines become \n, quotes \".
  return text !== '' && BARE.test(text) ? text : JSON.stringify(text);
}

/** One line for one call: `time=… level=warn logger=certkeeper msg="…" id=web code=…`, or its JSON. */
export function formatLine(
  format: LogFormat,
  level: LogLevel,
  message: string,
  fields: Record<string, unknown> | undefined,
  time: Date = new Date(),
): string {
  const entry: Record<string, unknown> = {
    time: time.toISOString(),
    level,
    logger: 'certkeeper',
    msg: scrubSecrets(String(message)),
  };
  for (const [key, value] of Object.entries(fields ?? {})) {
    const p = plain(value);
    if (p !== undefined) entry[RESERVED.has(key) ? `${key}_` : key] = p;
  }
  if (format === 'json') return `${JSON.stringify(entry)}\n`;
  const parts = Object.entries(entry).map(([k, v]) => `${logfmtKey(k)}=${logfmtValue(v)}`);
  return `${parts.join(' ')}\n`;
}

/** A logger printing one line per call (logfmt or JSON) to standard error. */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const make =
    (level: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const threshold = options.level ?? envLevel();
      if (threshold === 'silent' || LEVELS.indexOf(level) < LEVELS.indexOf(threshold)) return;
      write(formatLine(options.format ?? envFormat(), level, message, fields), level);
    };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

/** Default: warnings and errors, one line each, to standard error (see `createConsoleLogger`). */
export const defaultLogger: Logger = createConsoleLogger();

const noop = () => {};
/** A logger that drops everything. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** How a logger wants its arguments. */
export type LoggerStyle = 'message-first' | 'fields-first';

type Methods = Record<LogLevel, (...args: unknown[]) => unknown>;

function hasMethods(value: unknown, names: readonly string[]): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function')
  );
}

/**
 * Which family a logger instance belongs to, by shape (the packages are never imported):
 * pino (`bindings`, `levels.values`), bunyan (`addStream`, `levels()`), winston (`transports`,
 * `add`), the global `console`, or anything else with the four methods.
 */
export function loggerKind(target: unknown): 'pino' | 'bunyan' | 'winston' | 'console' | 'other' {
  if (target === globalThis.console) return 'console';
  const t = target as Record<string, unknown>;
  if (!hasMethods(target, LEVELS)) return 'other';
  const levels = t.levels as { values?: unknown } | undefined;
  if (typeof t.bindings === 'function' && typeof t.child === 'function' && typeof levels?.values === 'object')
    return 'pino';
  if (typeof t.addStream === 'function' && typeof t.levels === 'function') return 'bunyan';
  if (typeof t.add === 'function' && typeof t.log === 'function' && 'transports' in t) return 'winston';
  return 'other';
}

const ADAPTED = Symbol.for('certkeeper.logger.adapted');

/**
 * The certkeeper `Logger` for `target`: pino and bunyan instances (and children) get
 * `(fields, message)`, winston gets `(message, meta)` with its own `message`/`level` keys kept
 * out of the way, `console` becomes the one-line logger with every level on, and anything
 * else with `debug`/`info`/`warn`/`error` is called as it is (`style: 'fields-first'` for
 * another logger of the pino kind). Throws INVALID_OPTION for anything without those methods.
 */
export function toLogger(target: unknown, options: { style?: LoggerStyle; option?: string } = {}): Logger {
  const option = options.option ?? 'logger';
  if (!hasMethods(target, LEVELS)) {
    throw optionError(option, 'must have debug, info, warn and error methods');
  }
  if ((target as Record<symbol, unknown>)[ADAPTED] === true) return target as unknown as Logger;
  const kind = loggerKind(target);
  if (kind === 'console') return brand(createConsoleLogger({ level: 'debug' }));
  const methods = target as unknown as Methods;
  const fieldsFirst = options.style === 'fields-first' || kind === 'pino' || kind === 'bunyan';
  const call = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (fieldsFirst) methods[level]({ ...fields }, message);
    else if (kind === 'winston') methods[level](message, winstonMeta(fields));
    else methods[level](message, fields);
  };
  if (options.style === undefined && kind === 'other') return target as unknown as Logger;
  return brand({ debug: call('debug'), info: call('info'), warn: call('warn'), error: call('error') });
}

/** winston merges meta into its entry: keys it owns would overwrite the level or the message. */
function winstonMeta(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields ?? {}))
    meta[key === 'message' || key === 'level' ? `${key}_` : key] = value;
  return meta;
}

function brand(logger: Logger): Logger {
  Object.defineProperty(logger, ADAPTED, { value: true });
  return logger;
}
