/**
 * The logger hook. Any object with these four methods works (console, pino and winston
 * child loggers fit). certkeeper never passes key material to it: fields are names, serials,
 * fingerprints, durations and error codes.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = () => {};

/** Default: warnings and errors to the console, nothing else, so a library stays quiet. */
export const defaultLogger: Logger = {
  debug: noop,
  info: noop,
  warn: (message, fields) => console.warn(`[certkeeper] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[certkeeper] ${message}`, fields ?? ''),
};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
