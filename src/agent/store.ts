/**
 * The store an agent configuration names, opened for a long-running writer: a file store's
 * directory is created, PostgreSQL tables are created when missing, and a shared store is
 * encrypted with the configured keys (or, explicitly, not at all). The spec is the CLI's
 * `--store` syntax, so `certkeeper status --store …` reads what the agent writes.
 */
import { resolve } from 'node:path';
import type { Logger } from '../logger.js';
import { EncryptedStore } from '../store/encrypted-store.js';
import { FileStore } from '../store/file-store.js';
import { PostgresStore } from '../store/postgres-store.js';
import { redactUrl } from '../store/redact-url.js';
import { RedisStore } from '../store/redis-store.js';
import type { EncryptionChoice } from '../store/sealer.js';
import type { Store } from '../store/store.js';
import type { StoreConfig } from './config.js';

export interface AgentStore {
  store: Store;
  kind: 'file' | 'redis' | 'postgres';
  /** Where it is, without credentials. */
  where: string;
}

const keysOf = (text: string) =>
  text
    .split(/[,\r\n]+/)
    .map((k) => k.trim())
    .filter(Boolean);

export function openAgentStore(config: StoreConfig, baseDir: string, logger: Logger): AgentStore {
  const keys = config.encryptionKey ? keysOf(config.encryptionKey) : undefined;
  const encryption: EncryptionChoice = keys ? { keys } : 'none';
  const url = config.url;
  if (/^rediss?:\/\//i.test(url)) {
    const prefix = config.redisPrefix ?? 'certkeeper';
    return {
      store: new RedisStore({ url, prefix, encryption, logger }),
      kind: 'redis',
      where: redactUrl(url),
    };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return {
      store: new PostgresStore({
        connectionString: url,
        table: config.pgTable ?? 'certkeeper',
        schema: config.pgSchema ?? 'public',
        encryption,
        logger,
      }),
      kind: 'postgres',
      where: redactUrl(url),
    };
  }
  const directory = resolve(baseDir, url.replace(/^file:/, ''));
  const file = new FileStore({ directory });
  return {
    store: keys ? new EncryptedStore(file, { keys, logger }) : file,
    kind: 'file',
    where: directory,
  };
}
