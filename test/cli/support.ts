// Running the certkeeper command in-process against real stores: a FileStore in a temporary
// directory (plain, or encrypted at rest), the machine's Redis under a prefix of its own, and its
// PostgreSQL in tables of their own, each filled by a real manager with the embedded CA.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { CliContext } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/main.js';
import type { Clock } from '../../src/clock.js';
import { silentLogger } from '../../src/logger.js';
import { type CertificateStatus, createCertificateManager } from '../../src/manager/manager.js';
import type { ManagedCertificateOptions } from '../../src/manager/options.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { postgresPeer, redisPeer } from '../support/services.js';

export type Kind = 'file' | 'file-encrypted' | 'redis' | 'postgres';

export interface Fixture {
  kind: Kind;
  /** Arguments that point the command at this store (and its key, where one is needed). */
  args: string[];
  /** Environment for the command. */
  env: Record<string, string>;
  /** The same store, opened for the test itself. */
  store: Store;
  dir: string;
  cleanup(): Promise<void>;
}

export async function cli(argv: string[], env: Record<string, string | undefined> = {}, cwd = process.cwd()) {
  const ctx: CliContext = { env: { PATH: process.env.PATH, ...env }, cwd, now: Date.now };
  return runCli(argv, ctx);
}

/** A store of `kind` (null when its server is missing: see services.ts), with its key file. */
export async function storeOf(kind: Kind): Promise<Fixture | null> {
  const key = randomBytes(32).toString('base64');
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-cli-'));
  const keyFile = join(dir, 'encryption.key');
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  if (kind === 'file' || kind === 'file-encrypted') {
    const directory = join(dir, 'store');
    const file = new FileStore({ directory });
    const store = kind === 'file' ? file : new EncryptedStore(file, { keys: [key], logger: silentLogger });
    // The encrypted file store gets its key from the environment, as a deployment would.
    return {
      kind,
      args: ['--store', `file:${directory}`],
      env: kind === 'file' ? {} : { CERTKEEPER_ENCRYPTION_KEY: key },
      store,
      dir,
      cleanup: async () => {
        await store.close();
        removeDir();
      },
    };
  }
  if (kind === 'redis') {
    const url = await redisPeer();
    if (!url) return null;
    const prefix = `certkeeper-cli-${randomUUID()}`;
    const store = new RedisStore({ url, prefix, encryption: { keys: [key] }, logger: silentLogger });
    return {
      kind,
      args: ['--store', url, '--redis-prefix', prefix, '--encryption-key-file', keyFile],
      env: {},
      store,
      dir,
      cleanup: async () => {
        await store.close();
        const admin = new Redis(url);
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          if (keys.length > 0) await admin.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
        await admin.quit();
        removeDir();
      },
    };
  }
  const url = await postgresPeer();
  if (!url) return null;
  const table = `ck_cli_${randomBytes(6).toString('hex')}`;
  const store = new PostgresStore({
    connectionString: url,
    table,
    encryption: { keys: [key] },
    logger: silentLogger,
  });
  return {
    kind,
    args: ['--store', url, '--pg-table', table, '--encryption-key-file', keyFile],
    env: {},
    store,
    dir,
    cleanup: async () => {
      await store.close();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`);
      await admin.end();
      removeDir();
    },
  };
}

/** Fills `store` with certificates from a real manager and its default issuer (the embedded CA). */
export async function fill(
  store: Store,
  certificates: ManagedCertificateOptions[] = [
    { id: 'web', names: ['web.test', 'www.web.test'] },
    { id: 'api', names: ['api.test'], purpose: 'client' },
  ],
  clock?: Clock,
): Promise<{ status: CertificateStatus[]; roots: string[] }> {
  const manager = createCertificateManager({
    store,
    certificates,
    logger: silentLogger,
    reconcileIntervalMs: 0,
    keepAlive: false,
    ...(clock ? { clock } : {}),
  });
  await manager.start();
  if (clock && 'advance' in clock) await (clock as { advance(ms: number): Promise<void> }).advance(0);
  await manager.ready();
  const status = manager.status();
  const roots = await manager.trustAnchors();
  await manager.stop();
  return { status, roots };
}
