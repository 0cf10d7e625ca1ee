/**
 * The SQL behind `PostgresStore`. Each operation is one statement, hence one transaction, so
 * "write the value and notify" or "check the lease, then write" can never interleave with another
 * client; times come from the database (`clock_timestamp()`), so leases do not depend on the
 * replicas' clocks. Table layout and the reasons for it are in `./postgres-store.ts`. Internal.
 */

/**
 * A lease row this store cannot have written: `renew` and `acquire` always set `expires_at` to
 * now + `ttl_ms` with a positive, finite `ttl_ms`, so a row expiring later than that (`'infinity'`,
 * a date years ahead) or with a `ttl_ms` that is not a sane number (NaN sorts above every number
 * in PostgreSQL) was planted or damaged. It would otherwise hold the lock forever.
 */
const GARBAGE_LEASE = `(NOT (ttl_ms > 0 AND ttl_ms < 1e12)
  OR expires_at > clock_timestamp() + ttl_ms * interval '1 millisecond')`;

/** The row of a lease that is still current (same token and owner, not lapsed), locked FOR SHARE. */
const HELD_LEASE = (locks: string, name: string, token: string, owner: string) =>
  `SELECT 1 FROM ${locks} WHERE name = ${name} AND token = ${token} AND owner = ${owner}
        AND expires_at > clock_timestamp() FOR SHARE`;

/** Every statement of a store whose tables are `values` and `locks` (quoted, schema-qualified). */
export function statements(values: string, locks: string) {
  return {
    createTables: (schema: string, table: string) => `
      SELECT pg_advisory_xact_lock(hashtext('certkeeper ${schema}.${table}'));
      CREATE TABLE IF NOT EXISTS ${values} (
        key text COLLATE "C" PRIMARY KEY,
        value bytea NOT NULL,
        modified timestamptz NOT NULL);
      CREATE TABLE IF NOT EXISTS ${locks} (
        name text COLLATE "C" PRIMARY KEY,
        token bigint NOT NULL,
        owner text NOT NULL,
        expires_at timestamptz NOT NULL,
        ttl_ms double precision NOT NULL);`,
    get: `SELECT value FROM ${values} WHERE key = $1`,
    stat: `SELECT octet_length(value) AS size, modified FROM ${values} WHERE key = $1`,
    put: `WITH written AS (
        INSERT INTO ${values} (key, value, modified) VALUES ($1, $2, clock_timestamp())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, modified = EXCLUDED.modified
        RETURNING key)
      SELECT pg_notify($3, key) FROM written`,
    delete: `WITH removed AS (DELETE FROM ${values} WHERE key = $1 RETURNING key)
      SELECT pg_notify($2, key) FROM removed`,
    // Fenced writes: the lease's row is read FOR SHARE in the writing statement. A takeover
    // (acquire's upsert) must wait for that lock until the write commits; a write that comes
    // while a takeover holds the row waits for it, then re-checks the row as the takeover left it
    // (READ COMMITTED re-evaluates a locked row) and finds the lease gone. So no acquisition falls
    // between the check and the write.
    putFenced: `WITH held AS (${HELD_LEASE(locks, '$4', '$5', '$6')}),
      written AS (
        INSERT INTO ${values} (key, value, modified)
        SELECT $1, $2, clock_timestamp() WHERE EXISTS (SELECT 1 FROM held)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, modified = EXCLUDED.modified
        RETURNING key)
      SELECT pg_notify($3, key) FROM written`,
    deleteFenced: `WITH held AS (${HELD_LEASE(locks, '$3', '$4', '$5')}),
      removed AS (
        DELETE FROM ${values} WHERE key = $1 AND EXISTS (SELECT 1 FROM held) RETURNING key),
      notified AS (SELECT pg_notify($2, key) FROM removed)
      SELECT EXISTS (SELECT 1 FROM held) AS held, (SELECT count(*) FROM notified) > 0 AS removed`,
    listAll: `SELECT key FROM ${values}`,
    list: `SELECT key FROM ${values} WHERE key = $1 OR key LIKE $2 ESCAPE '\\'`,
    // The main query sees the table as it was before the CTE's write: when the attempt lost, it
    // reports how long the current lease has left.
    acquire: `WITH won AS (
        INSERT INTO ${locks} AS l (name, token, owner, expires_at, ttl_ms)
        VALUES ($1, 1, $2, clock_timestamp() + $3::float8 * interval '1 millisecond', $3::float8)
        ON CONFLICT (name) DO UPDATE
          SET token = l.token + 1, owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
              ttl_ms = EXCLUDED.ttl_ms
          WHERE l.expires_at <= clock_timestamp()
        RETURNING token)
      SELECT (SELECT token FROM won) AS token,
        (SELECT greatest(0, (extract(epoch FROM expires_at) - extract(epoch FROM clock_timestamp())) * 1000)::float8
           FROM ${locks} WHERE name = $1) AS wait_ms,
        (SELECT ${GARBAGE_LEASE} FROM ${locks} WHERE name = $1) AS garbage`,
    // Gives a garbage lease the caller's TTL ($2) from now, never lengthening it.
    repair: `UPDATE ${locks}
        SET expires_at = least(expires_at, clock_timestamp() + $2::float8 * interval '1 millisecond'),
            ttl_ms = $2::float8
        WHERE name = $1 AND ${GARBAGE_LEASE}
        RETURNING greatest(0, (extract(epoch FROM expires_at) - extract(epoch FROM clock_timestamp())) * 1000)::float8
          AS wait_ms`,
    renew: `UPDATE ${locks}
        SET ttl_ms = coalesce($4::float8, ttl_ms),
            expires_at = clock_timestamp() + coalesce($4::float8, ttl_ms) * interval '1 millisecond'
        WHERE name = $1 AND token = $2 AND owner = $3 AND expires_at > clock_timestamp()
        RETURNING ttl_ms`,
    // '-infinity' marks "released" (distinct from "lapsed"), so a second unlock returns false.
    release: `UPDATE ${locks} SET expires_at = '-infinity'
        WHERE name = $1 AND token = $2 AND owner = $3 AND expires_at > '-infinity'`,
  };
}
