/**
 * `PostgresStore`: the `Store` contract on PostgreSQL, via the optional peer dependency `pg`,
 * loaded on first use. Two tables per store, so several applications share one database by
 * choosing different `table` names (or schemas):
 *
 *   <schema>.<table>        key text COLLATE "C" PRIMARY KEY, value bytea, modified timestamptz
 *   <schema>.<table>_locks  name text PRIMARY KEY, token bigint, owner text, expires_at, ttl_ms
 *
 * Both are created on first use (`CREATE TABLE IF NOT EXISTS` under an advisory lock, since
 * concurrent first uses would otherwise race in the catalog); `createTables: false` skips that
 * for roles without DDL rights.
 *
 * **Locks are leases in a table, not advisory locks.** Session advisory locks belong to one
 * connection: with a pool, the holder must pin a connection for the whole (minutes-long) ACME
 * order; they have no lease, so a holder stalled by a GC pause or a stopped VM keeps the lock
 * for as long as its TCP connection lives and nobody can take over; when the connection drops,
 * the lock vanishes without telling the holder, who carries on as if it held it; and they carry
 * no fencing token. A row per lock gives all of that instead: `expires_at` on the database's
 * single clock (replicas' clocks do not matter), renewal from any pooled connection, takeover by
 * one atomic `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <= now` (the row lock serialises
 * contenders), and a per-lock fencing counter (`token = token + 1` on that same row, never
 * deleted, so tokens strictly increase). A fenced write locks the lease's row in the writing
 * statement itself, so no takeover falls between its check and its write (see `putFenced`).
 * Operators can read the table to see who holds what; a row set by hand to expire at 'infinity'
 * (or otherwise later than its own TTL allows) is garbage: it gets the next contender's lease and
 * then lapses.
 *
 * Values: one UPSERT statement, so readers see the old or the new row (MVCC). `list` matches
 * `key = prefix OR key LIKE prefix || '/%'`, with `\`, `%` and `_` in the prefix escaped; the "C"
 * collation lets that use the primary key index and compares bytes, not locale rules.
 *
 * Notifications: `pg_notify(channel, key)` runs in the same statement, hence the same
 * transaction, as the write, so it is delivered exactly when the write commits and never for a
 * write that rolled back. `watch` LISTENs on one dedicated connection; when it drops (server
 * restart, `pg_terminate_backend`, network), it reconnects with backoff, LISTENs again and tells
 * listeners to resync. The channel is "<schema>.<table>".
 *
 * Deadlines: connecting (`connectionTimeoutMillis`) and each statement (`statement_timeout`,
 * enforced by the server so a timed-out statement does not run on) are bounded by `timeoutMs`.
 */
import { randomUUID } from 'node:crypto';
import type { ClientBase, Pool, PoolConfig } from 'pg';
import { describeCause, optionError } from '../errors.js';
import { leaseExpiry, loadPeer, pause } from './peer.js';
import { statements } from './postgres-sql.js';
import { closedError, lockLostError } from './shared.js';
import { type LockAttempt, SharedStore, type SharedStoreOptions } from './shared-store.js';
import type { LockLease } from './store.js';
import type { WatchHub } from './watch.js';

/** The parts of a `pg.Pool` a `PostgresStore` uses. */
export interface PgPoolLike {
  query: (...args: never[]) => unknown;
  connect: (...args: never[]) => unknown;
}

/** Options of `PostgresStore`. */
export interface PostgresStoreOptions extends SharedStoreOptions {
  /** `postgres://user:password@host:port/database?sslmode=…` */
  connectionString?: string;
  /** pg connection options (host, port, user, password, database, ssl, application_name, …). */
  connection?: Record<string, unknown>;
  /**
   * An existing `pg.Pool`. The store uses it but never ends it; `watch` holds one of its
   * connections for LISTEN. Its timeouts are its owner's (each call is still bounded).
   */
  pool?: PgPoolLike;
  /** Table name, `[a-z_][a-z0-9_]{0,39}`; locks go to `<table>_locks`. Default `certkeeper`. */
  table?: string;
  /** Schema, `[a-z_][a-z0-9_]{0,19}`, which must exist. Default `public`. */
  schema?: string;
  /** Create the tables on first use when missing. Default true. */
  createTables?: boolean;
}

type Source = { config: PoolConfig } | { pool: Pool };
type PgModule = typeof import('pg');

const TABLE = /^[a-z_][a-z0-9_]{0,39}$/;
const SCHEMA = /^[a-z_][a-z0-9_]{0,19}$/;
const MAX_RELISTEN_DELAY_MS = 5_000;

function validate(options: PostgresStoreOptions) {
  if (options === null || typeof options !== 'object') {
    throw optionError('options', 'must be an object with connectionString, connection or pool');
  }
  const { connectionString, connection, pool, table = 'certkeeper', schema = 'public' } = options;
  const { createTables = true } = options;
  const given = [connectionString, connection, pool].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw optionError('connectionString', `(or connection, or pool): give exactly one, got ${given}`);
  }
  if (typeof table !== 'string' || !TABLE.test(table))
    throw optionError('table', 'must match [a-z_][a-z0-9_]{0,39}');
  if (typeof schema !== 'string' || !SCHEMA.test(schema)) {
    throw optionError('schema', 'must match [a-z_][a-z0-9_]{0,19}');
  }
  if (typeof createTables !== 'boolean') throw optionError('createTables', 'must be a boolean');
  let source: Source;
  if (connectionString !== undefined) {
    if (typeof connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(connectionString)) {
      throw optionError('connectionString', 'must be a postgres:// or postgresql:// URL');
    }
    source = { config: { connectionString } };
  } else if (connection !== undefined) {
    if (connection === null || typeof connection !== 'object')
      throw optionError('connection', 'must be an object');
    source = { config: { ...connection } as PoolConfig };
  } else {
    const p = pool as Partial<PgPoolLike> | null;
    if (!p || typeof p !== 'object' || typeof p.query !== 'function' || typeof p.connect !== 'function') {
      throw optionError('pool', 'must be a pg.Pool');
    }
    source = { pool: pool as unknown as Pool };
  }
  return { source, table, schema, createTables };
}

/** LIKE pattern for "anything below prefix": the prefix's own wildcards match only themselves. */
export function likeBelow(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}/%`;
}

/** A store in PostgreSQL (driver `pg`, an optional peer), shared by replicas. */
export class PostgresStore extends SharedStore {
  readonly table: string;
  readonly schema: string;
  readonly #source: Source;
  readonly #createTables: boolean;
  readonly #channel: string;
  readonly #sql: ReturnType<typeof statements>;
  #ready: Promise<Pool> | undefined;
  #owned: Pool | undefined;
  #pg: PgModule | undefined;
  #listener: (() => void) | undefined;

  constructor(options: PostgresStoreOptions) {
    const { source, table, schema, createTables } = validate(options);
    super('PostgresStore', options);
    this.#source = source;
    this.table = table;
    this.schema = schema;
    this.#createTables = createTables;
    this.#channel = `${schema}.${table}`;
    this.#sql = statements(`"${schema}"."${table}"`, `"${schema}"."${table}_locks"`);
  }

  protected async readValue(key: string): Promise<Uint8Array | null> {
    const { rows } = await this.#query(this.#sql.get, [key]);
    return rows.length === 0 ? null : new Uint8Array(rows[0].value as Buffer);
  }

  protected async writeValue(key: string, value: Uint8Array): Promise<void> {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    await this.#query(this.#sql.put, [key, bytes, this.#channel]);
  }

  protected async removeValue(key: string): Promise<boolean> {
    return (await this.#query(this.#sql.delete, [key, this.#channel])).rowCount === 1;
  }

  protected async writeFenced(key: string, value: Uint8Array, fence: LockLease): Promise<boolean> {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const lease = [fence.name, fence.token, fence.owner];
    return (await this.#query(this.#sql.putFenced, [key, bytes, this.#channel, ...lease])).rowCount === 1;
  }

  protected async removeFenced(key: string, fence: LockLease): Promise<boolean | 'lost'> {
    const lease = [fence.name, fence.token, fence.owner];
    const { rows } = await this.#query(this.#sql.deleteFenced, [key, this.#channel, ...lease]);
    const found = rows[0] as { held: boolean; removed: boolean };
    return found.held ? found.removed : 'lost';
  }

  protected async listKeys(prefix: string): Promise<string[]> {
    const { rows } =
      prefix === ''
        ? await this.#query(this.#sql.listAll, [])
        : await this.#query(this.#sql.list, [prefix, likeBelow(prefix)]);
    return rows.map((row) => row.key as string);
  }

  protected async statValue(key: string): Promise<{ size: number; modified: Date } | null> {
    const { rows } = await this.#query(this.#sql.stat, [key]);
    return rows.length === 0 ? null : { size: Number(rows[0].size), modified: rows[0].modified as Date };
  }

  protected async acquire(name: string, ttlMs: number): Promise<LockAttempt> {
    const owner = randomUUID();
    const startedAt = Date.now();
    const { rows } = await this.#query(this.#sql.acquire, [name, owner, ttlMs]);
    const found = rows[0] as { token: string | null; wait_ms: number | null; garbage: boolean | null };
    if (found.token === null) {
      let waitMs = found.wait_ms;
      if (found.garbage) {
        // Not a lease this store wrote: give it the caller's, after which it is taken over.
        const repaired = await this.#query(this.#sql.repair, [name, ttlMs]);
        waitMs = repaired.rows[0]?.wait_ms ?? 1;
      }
      return { retryInMs: Math.max(1, Number(waitMs ?? 1)) };
    }
    const { token } = found;
    return {
      lease: Object.freeze({ name, token: Number(token), owner, expiresAt: leaseExpiry(startedAt, ttlMs) }),
    };
  }

  protected async renew(lease: LockLease, ttlMs: number | undefined): Promise<LockLease> {
    const startedAt = Date.now();
    const { rows } = await this.#query(this.#sql.renew, [
      lease.name,
      lease.token,
      lease.owner,
      ttlMs ?? null,
    ]);
    if (rows.length === 0) throw lockLostError(lease.name, lease.token, 'released, lapsed or taken over');
    return Object.freeze({ ...lease, expiresAt: leaseExpiry(startedAt, Number(rows[0].ttl_ms)) });
  }

  protected async release(lease: LockLease): Promise<boolean> {
    return (await this.#query(this.#sql.release, [lease.name, lease.token, lease.owner])).rowCount === 1;
  }

  protected async subscribe(hub: WatchHub, signal: AbortSignal): Promise<void> {
    await this.#db();
    await this.#listen(hub, signal);
  }

  protected async shutdown(): Promise<void> {
    this.#listener?.();
    this.#listener = undefined;
    const owned = this.#owned;
    this.#owned = undefined;
    // end() waits for checked-out connections; in-flight statements are bounded by statement_timeout.
    if (owned) await Promise.race([owned.end().catch(() => {}), pause(this.timeoutMs)]);
  }

  protected lockId(name: string): string {
    return `pg\0${this.#channel}\0${name}`;
  }

  async #query(text: string, values: unknown[]) {
    const pool = await this.#db();
    return pool.query({ text, values });
  }

  /** The pool, once the tables exist. A failed set-up is forgotten so the next call tries again. */
  #db(): Promise<Pool> {
    if (!this.#ready) {
      const ready = this.#setUp();
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #setUp(): Promise<Pool> {
    let pool: Pool;
    if ('pool' in this.#source) {
      pool = this.#source.pool;
    } else {
      if (!this.#owned) {
        const pg = await this.#module();
        if (this.closed) throw closedError('PostgresStore');
        this.#owned = new pg.Pool(this.#config());
        // An idle connection that dies (server restart, terminated backend) is dropped by the
        // pool; without a listener its 'error' would crash the process.
        this.#owned.on('error', (err) =>
          this.logger.debug('PostgresStore: idle connection lost', { error: describeCause(err) }),
        );
      }
      pool = this.#owned;
    }
    if (this.#createTables) await pool.query(this.#sql.createTables(this.schema, this.table));
    return pool;
  }

  async #module(): Promise<PgModule> {
    if (!this.#pg) {
      const module = await loadPeer('pg', 'PostgresStore', () => import('pg'));
      // pg is CommonJS: its exports are the default export under ESM, the module itself under CJS.
      this.#pg = ((module as unknown as { default?: PgModule }).default ?? module) as PgModule;
    }
    return this.#pg;
  }

  #config(): PoolConfig {
    const { config } = this.#source as { config: PoolConfig };
    return {
      application_name: 'certkeeper',
      ...config,
      connectionTimeoutMillis: this.timeoutMs,
      statement_timeout: this.timeoutMs,
      keepAlive: true,
      // A store should not keep a process alive just because it has idle connections.
      allowExitOnIdle: true,
    };
  }

  /** One LISTEN connection, re-established with backoff whenever it is lost, until close. */
  async #listen(hub: WatchHub, signal: AbortSignal): Promise<void> {
    let client: ClientBase;
    let done: (err?: Error) => void;
    if ('pool' in this.#source) {
      const pooled = await this.#source.pool.connect();
      client = pooled;
      done = (err) => pooled.release(err ?? true); // never hand a LISTENing connection back
    } else {
      const pg = await this.#module();
      const own = new pg.Client({ ...this.#config(), statement_timeout: undefined });
      client = own;
      done = () => {
        own.end().catch(() => {});
      };
      own.on('error', () => {}); // until the handler below takes over
      await own.connect().catch((err: unknown) => {
        done();
        throw err;
      });
    }
    let over = false;
    const stop = (err?: unknown) => {
      if (over) return false;
      over = true;
      done(err instanceof Error ? err : undefined);
      return true;
    };
    const lost = (err?: unknown) => {
      if (!stop(err) || this.closed) return;
      this.logger.warn('PostgresStore: change notifications interrupted; reconnecting', {
        channel: this.#channel,
        error: err === undefined ? 'connection ended' : describeCause(err),
      });
      void this.#relisten(hub);
    };
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload !== undefined) hub.change(message.payload);
    });
    client.on('error', lost);
    client.on('end', () => lost());
    try {
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (err) {
      stop(err);
      throw err;
    }
    // Closed, or the caller's deadline passed while we were connecting: nobody wants this one.
    if (this.closed || signal.aborted) {
      stop();
      throw this.closed ? closedError('PostgresStore') : signal.reason;
    }
    this.#listener = () => stop();
  }

  async #relisten(hub: WatchHub): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      await pause(Math.min(100 * 2 ** attempt, MAX_RELISTEN_DELAY_MS), this.closing);
      if (this.closed) return;
      try {
        await this.io('re-subscribing to store changes', {}, (signal) => this.#listen(hub, signal));
        hub.resync();
        return;
      } catch {
        // still down: try again after a longer pause
      }
    }
  }
}
