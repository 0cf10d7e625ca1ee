// PostgresStore against the machine's real PostgreSQL: the conformance suite (two clients), then
// what only this store has: its tables, LIKE escaping, LISTEN/NOTIFY watch, backends terminated
// under it, unreachable and silent servers. Every test uses tables of its own and drops them.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { CachedStore } from '../../src/store/cached-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { likeBelow, PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres-store.js';
import type { StoreChange } from '../../src/store/store.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { closedPort, eventually, postgresPeer, sleep } from '../support/services.js';

const url = await postgresPeer();
const KEY = randomBytes(32).toString('base64');
const uniqueTable = () => `ck_test_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

if (!url) {
  describe.skip('PostgresStore (no PostgreSQL)', () => it('needs PostgreSQL', () => {}));
} else {
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  admin.on('error', () => {});
  afterAll(() => admin.end());
  const drop = (table: string) => admin.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`);

  /** Ends the LISTEN connections of the stores named `app`, as a server restart would. */
  const killListeners = async (app: string) => {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE application_name = $1 AND query LIKE 'LISTEN %'`,
      [app],
    );
    if (rows.length === 0) throw new Error(`no LISTEN connection of ${app} to end`);
  };

  await runStoreConformance('PostgresStore', () => {
    const table = uniqueTable();
    const app = `ck-test-${table}`;
    const open = () =>
      new PostgresStore({
        connectionString: `${url}?application_name=${app}`,
        table,
        encryption: false,
        logger: silentLogger,
      });
    return {
      store: open(),
      second: open,
      interruptWatch: () => killListeners(app),
      cleanup: () => drop(table).then(() => {}),
    };
  });

  // The local copy over a real shared store: fenced writes and watch are the primary's.
  await runStoreConformance('CachedStore(PostgresStore, FileStore)', () => {
    const table = uniqueTable();
    const app = `ck-test-${table}`;
    const dir = mkdtempSync(join(tmpdir(), 'ck-cached-pg-'));
    let copies = 0;
    const open = () =>
      new CachedStore({
        primary: new PostgresStore({
          connectionString: `${url}?application_name=${app}`,
          table,
          encryption: { keys: [KEY] },
          logger: silentLogger,
        }),
        cache: new FileStore({ directory: join(dir, String(copies++)) }),
        logger: silentLogger,
      });
    return {
      store: open(),
      second: open,
      interruptWatch: () => killListeners(app),
      cleanup: async () => {
        await drop(table);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });

  describe('PostgresStore on a real PostgreSQL', () => {
    const tables: string[] = [];
    const stores: PostgresStore[] = [];
    const open = (options: Partial<PostgresStoreOptions> = {}) => {
      const store = new PostgresStore({
        connectionString: url,
        table: tables.at(-1)!,
        encryption: { keys: [KEY] },
        logger: silentLogger,
        ...options,
      } as PostgresStoreOptions);
      stores.push(store);
      return store;
    };
    const fresh = (options: Partial<PostgresStoreOptions> = {}) => {
      tables.push(uniqueTable());
      return open(options);
    };

    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const table of tables.splice(0)) await drop(table);
    });

    it('refuses to start without an encryption key unless encryption is "none", naming the option', async () => {
      tables.push(uniqueTable());
      const table = tables.at(-1)!;
      expect(process.env.CERTKEEPER_ENCRYPTION_KEY).toBeUndefined();
      for (const encryption of [{ env: {} }, undefined]) {
        expect(
          () => new PostgresStore({ connectionString: url, table, encryption, logger: silentLogger }),
        ).toThrow(
          expect.objectContaining({
            code: 'INVALID_OPTION',
            details: { option: 'encryption' },
            message: expect.stringMatching(/PostgresStore.*CERTKEEPER_ENCRYPTION_KEY.*encryption: 'none'/),
          }),
        );
      }
      const store = open({ encryption: 'none' });
      await store.put('certificates/i/a/01/key.pem', 'plain');
      const { rows } = await admin.query(`SELECT value FROM public.${table} WHERE key = $1`, [
        'certificates/i/a/01/key.pem',
      ]);
      expect(rows[0].value.toString()).toBe('plain');
    });

    it('validates options eagerly and names the bad option', () => {
      const cases: [unknown, RegExp][] = [
        [null, /options/],
        [{}, /connectionString/],
        [{ connectionString: url, connection: {} }, /connectionString/],
        [{ connectionString: 'mysql://x' }, /connectionString/],
        [{ connectionString: url, table: 'Certs' }, /table/],
        [{ connectionString: url, table: 'x; DROP TABLE y' }, /table/],
        [{ connectionString: url, table: 'x'.repeat(41) }, /table/],
        [{ connectionString: url, schema: 'a.b' }, /schema/],
        [{ connectionString: url, createTables: 'yes' }, /createTables/],
        [{ connectionString: url, timeoutMs: -5 }, /timeoutMs/],
        [{ pool: {} }, /pool/],
        [{ connectionString: url, encryption: { keys: [KEY, KEY] } }, /encryption\.keys/],
      ];
      for (const [options, option] of cases) {
        expect(() => new PostgresStore(options as PostgresStoreOptions), String(option)).toThrow(
          expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(option) }),
        );
      }
    });

    it('keeps values and leases in its own tables, private keys encrypted', async () => {
      const store = fresh();
      const table = tables.at(-1)!;
      await store.put(
        'accounts/i/a/key.pem',
        '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      );
      await store.put('accounts/i/a/account.json', '{"url":"x"}');
      const { rows } = await admin.query(`SELECT key, value FROM public.${table} ORDER BY key`);
      expect(rows.map((row) => row.key)).toEqual(['accounts/i/a/account.json', 'accounts/i/a/key.pem']);
      expect(rows[0].value.toString()).toBe('{"url":"x"}');
      expect(rows[1].value.subarray(0, 4).toString('latin1')).toBe('CKE\u0001');
      expect(rows[1].value.toString('latin1')).not.toContain('PRIVATE KEY');
      const lease = (await store.tryLock('issue/a', { ttlMs: 60_000 }))!;
      const locks = await admin.query(`SELECT name, token, owner FROM public.${table}_locks`);
      expect(locks.rows).toEqual([{ name: 'issue/a', token: String(lease.token), owner: lease.owner }]);
      await store.unlock(lease);
      // Another application's table in the same database sees none of it.
      expect(await fresh().list('')).toEqual([]);
    });

    it('createTables: false does not create them, and reports the missing table as STORE_IO', async () => {
      const store = fresh({ createTables: false });
      await expect(store.get('a')).rejects.toMatchObject({ code: 'STORE_IO', message: /does not exist/ });
      const { rows } = await admin.query('SELECT to_regclass($1) AS t', [`public.${tables.at(-1)}`]);
      expect(rows[0].t).toBeNull();
    });

    it('escapes LIKE wildcards: "%" and "_" in a prefix match only themselves', async () => {
      expect(likeBelow('a_b%c\\')).toBe('a\\_b\\%c\\\\/%');
      const store = fresh();
      for (const key of ['p/a_b/x', 'p/axb/x', 'p/a%/y', 'p/abc/z', 'p/a%b/w', 'p/a_b'])
        await store.put(key, key);
      expect((await store.list('p/a_b')).sort()).toEqual(['p/a_b', 'p/a_b/x']);
      expect((await store.list('p/a%')).sort()).toEqual(['p/a%/y']);
      expect((await store.list('p')).length).toBe(6);
    });

    it('watch: a committed put or delete on one client reaches another client’s listener', async () => {
      const writer = fresh();
      const reader = open();
      const seen: StoreChange[] = [];
      const unwatch = await reader.watch('certificates/i', (change) => seen.push(change));
      await writer.put('certificates/i/a/current.json', '{}');
      await writer.put('certificates/ix/a/current.json', '{}');
      await writer.delete('certificates/i/a/current.json');
      await writer.delete('certificates/i/missing');
      await eventually(() => seen.length >= 2, 2_000);
      await sleep(100);
      expect(seen).toEqual([
        { type: 'change', key: 'certificates/i/a/current.json' },
        { type: 'change', key: 'certificates/i/a/current.json' },
      ]);
      unwatch();
      await writer.put('certificates/i/b/current.json', '{}');
      await sleep(200);
      expect(seen).toHaveLength(2);
    });

    it('a fenced write that meets a takeover in flight waits for it, re-checks the lease and is refused', async () => {
      const app = `certkeeper-test-${randomUUID().slice(0, 8)}`;
      const store = fresh({ connectionString: `${url}?application_name=${app}` });
      const table = tables.at(-1)!;
      const lease = (await store.tryLock('issue/a', { ttlMs: 60_000 }))!;
      await store.put('current.json', 'committed in time', { fence: lease });
      // Another replica taking the lock over (its lease having lapsed), caught before it commits.
      const thief = await admin.connect();
      try {
        await thief.query('BEGIN');
        await thief.query(
          `UPDATE public.${table}_locks SET token = token + 1, owner = 'thief' WHERE name = 'issue/a'`,
        );
        const late = store.put('current.json', 'too late', { fence: lease }).then(
          () => 'landed',
          (error: { code?: string }) => error.code,
        );
        const waiting = await eventually(async () => {
          const { rows } = await admin.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [app],
          );
          return rows.length > 0;
        }, 5_000);
        expect(waiting, 'the fenced write waits on the lease row the takeover holds').toBe(true);
        await thief.query('COMMIT');
        expect(await late).toBe('LOCK_LOST');
      } finally {
        thief.release();
      }
      expect(new TextDecoder().decode((await store.get('current.json'))!)).toBe('committed in time');
    });

    it('survives its backends being terminated: queries recover, the lease survives, watch re-listens', async () => {
      const app = `certkeeper-test-${randomUUID().slice(0, 8)}`;
      const store = fresh({ connectionString: `${url}?application_name=${app}` });
      const writer = open();
      const seen: StoreChange[] = [];
      await store.watch('', (change) => seen.push(change));
      const lease = (await store.tryLock('issue/a', { ttlMs: 60_000 }))!;
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      // The pool's connection and the LISTEN connection, and nobody else's.
      expect(killed.rows.length).toBeGreaterThanOrEqual(2);
      expect(await eventually(async () => (await store.list('')).length === 0, 5_000)).toBe(true);
      // A lease is a row, not a session: it outlives the connection that took it.
      expect((await store.renewLock(lease)).token).toBe(lease.token);
      await eventually(() => seen.some((change) => change.type === 'resync'), 5_000);
      expect(seen).toContainEqual({ type: 'resync' });
      await writer.put('after', 'x');
      await eventually(() => seen.some((change) => change.type === 'change'), 2_000);
      expect(seen).toContainEqual({ type: 'change', key: 'after' });
    });

    it('an unreachable server fails with STORE_IO at once, for values, locks and watch', async () => {
      const port = await closedPort();
      const store = new PostgresStore({
        connectionString: `postgres://postgres@127.0.0.1:${port}/test`,
        timeoutMs: 3_000,
        encryption: false,
      });
      stores.push(store);
      for (const call of [() => store.get('a'), () => store.tryLock('a'), () => store.watch('', () => {})]) {
        const started = Date.now();
        await expect(call()).rejects.toMatchObject({ code: 'STORE_IO', message: /ECONNREFUSED/ });
        expect(Date.now() - started).toBeLessThan(1_000);
      }
    });

    it('a server that accepts but never answers fails with STORE_IO at the deadline', async () => {
      const sockets: Socket[] = [];
      const silent: Server = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = silent.address() as { port: number };
        const store = new PostgresStore({
          connectionString: `postgres://postgres@127.0.0.1:${port}/test`,
          timeoutMs: 400,
          encryption: false,
        });
        stores.push(store);
        const started = Date.now();
        await expect(store.put('a', 'v')).rejects.toMatchObject({ code: 'STORE_IO' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(350);
        expect(Date.now() - started).toBeLessThan(2_000);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });

    it('uses an existing pool, watches through one of its connections, and never ends the pool', async () => {
      tables.push(uniqueTable());
      const pool = new pg.Pool({ connectionString: url, max: 3 });
      pool.on('error', () => {});
      try {
        const store = open({ connectionString: undefined, pool });
        const seen: string[] = [];
        await store.watch('', (change) => change.type === 'change' && seen.push(change.key));
        await store.put('shared', 'v');
        await eventually(() => seen.length > 0, 2_000);
        expect(seen).toEqual(['shared']);
        await store.close();
        expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await pool.end();
      }
    });
  });
}
