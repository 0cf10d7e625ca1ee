/**
 * Which store a command reads, from flags or the environment:
 *
 *   --store file:/var/lib/app/certkeeper | /path | redis://… | rediss://… | postgres://… | postgresql://…
 *   (default: $CERTKEEPER_STORE, else $CERTKEEPER_DIR, else ./.certkeeper, as the manager's default)
 *
 * Encryption keys, for what is sealed (private keys, the embedded CA's state): the keys in
 * `--encryption-key-file` (the format of CERTKEEPER_ENCRYPTION_KEY: `[id:]base64`, comma- or
 * line-separated), else CERTKEEPER_ENCRYPTION_KEY. Reading pointers and chains needs no key, so a
 * shared store opened without one is opened with `encryption: 'none'` (its sealed values then
 * read as "no key", never as plaintext). Nothing here creates tables or writes.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CertkeeperError, optionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { EncryptedStore } from '../store/encrypted-store.js';
import { ENCRYPTION_KEY_ENV, type EncryptionOptions } from '../store/envelope.js';
import { FileStore } from '../store/file-store.js';
import { PostgresStore } from '../store/postgres-store.js';
import { redactUrl } from '../store/redact-url.js';
import { RedisStore } from '../store/redis-store.js';
import type { EncryptionChoice } from '../store/sealer.js';
import type { Store } from '../store/store.js';
import type { CliContext } from './command.js';

export const STORE_ENV = 'CERTKEEPER_STORE';
export { STORE_USAGE } from './store-usage.js';

/** The parseArgs options every store-reading command accepts. */
export const STORE_OPTIONS = {
  store: { type: 'string' },
  'redis-prefix': { type: 'string' },
  'pg-table': { type: 'string' },
  'pg-schema': { type: 'string' },
  'encryption-key-file': { type: 'string' },
} as const;

export type StoreValues = {
  store?: string;
  'redis-prefix'?: string;
  'pg-table'?: string;
  'pg-schema'?: string;
  'encryption-key-file'?: string;
};

export interface OpenedStore {
  store: Store;
  /** Where it is, for messages: no credentials. */
  where: string;
  kind: 'file' | 'redis' | 'postgres';
  /** Whether encryption keys were given (sealed values can be read). */
  keyed: boolean;
}

const invalid = (option: string, message: string) =>
  optionError(`--${option}`, message, undefined, { flag: option });

function readKeys(file: string, ctx: CliContext): string[] {
  let text: string;
  try {
    text = readFileSync(resolve(ctx.cwd, file), 'utf8');
  } catch (error) {
    throw invalid(
      'encryption-key-file',
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const keys = text
    .split(/[,\r\n]+/)
    .map((k) => k.trim())
    .filter(Boolean);
  if (keys.length === 0) throw invalid('encryption-key-file', 'holds no key');
  return keys;
}

/** The encryption of the store, from the key file or the environment; null when there is no key. */
function encryptionOf(values: StoreValues, ctx: CliContext): EncryptionOptions | null {
  if (values['encryption-key-file']) return { keys: readKeys(values['encryption-key-file'], ctx) };
  if (ctx.env[ENCRYPTION_KEY_ENV]?.trim()) return { env: ctx.env };
  return null;
}

/** Opens the store the flags and environment name. The caller closes it. */
export function openStore(values: StoreValues, ctx: CliContext, logger: Logger): OpenedStore {
  const spec = values.store ?? ctx.env[STORE_ENV] ?? `file:${ctx.env.CERTKEEPER_DIR ?? '.certkeeper'}`;
  const encryption = encryptionOf(values, ctx);
  const shared: EncryptionChoice = encryption ?? 'none';
  const keyed = encryption !== null;
  if (/^rediss?:\/\//i.test(spec)) {
    const prefix = values['redis-prefix'] ?? ctx.env.CERTKEEPER_REDIS_PREFIX ?? 'certkeeper';
    return {
      store: new RedisStore({ url: spec, prefix, encryption: shared, logger }),
      where: redactUrl(spec),
      kind: 'redis',
      keyed,
    };
  }
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    const table = values['pg-table'] ?? ctx.env.CERTKEEPER_PG_TABLE ?? 'certkeeper';
    const schema = values['pg-schema'] ?? ctx.env.CERTKEEPER_PG_SCHEMA ?? 'public';
    return {
      store: new PostgresStore({
        connectionString: spec,
        table,
        schema,
        createTables: false,
        encryption: shared,
        logger,
      }),
      where: redactUrl(spec),
      kind: 'postgres',
      keyed,
    };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec))
    throw invalid('store', `has an unknown scheme: ${redactUrl(spec)}`);
  const directory = resolve(ctx.cwd, spec.replace(/^file:/, ''));
  // Never created here: a typo must not look like an empty store.
  if (!existsSync(directory) || !statSync(directory).isDirectory())
    throw new CertkeeperError('STORE_IO', `no store directory at ${directory}`, { details: { directory } });
  const file = new FileStore({ directory });
  return {
    store: encryption ? new EncryptedStore(file, { ...encryption, logger }) : file,
    where: directory,
    kind: 'file',
    keyed,
  };
}
