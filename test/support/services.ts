// The real peers the store tests talk to: Redis and PostgreSQL on this machine (or where
// CERTKEEPER_TEST_REDIS_URL / CERTKEEPER_TEST_POSTGRES_URL point). When one does not answer, its
// tests skip loudly, except under CI, where a skip would hide a store that was never tested.
import { createServer, Socket } from 'node:net';
import pg from 'pg';

export const REDIS_URL = process.env.CERTKEEPER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL =
  process.env.CERTKEEPER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const PROBE_MS = 2_000;

function unavailable(what: string, url: string, reason: string): null {
  const message = `${what} at ${url} is not answering (${reason}): ${what} store tests are NOT being run`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n!!! ${message}\n`);
  return null;
}

/** Sends PING over a raw socket: answers whether a Redis is there without needing the store under test. */
function pingRedis(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(why));
    };
    socket.setTimeout(PROBE_MS, () => fail('timed out'));
    socket.once('error', (err) => fail((err as NodeJS.ErrnoException).code ?? err.message));
    socket.once('data', (data) => {
      socket.end();
      if (data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH')) resolve();
      else fail(`unexpected reply ${JSON.stringify(data.toString().slice(0, 40))}`);
    });
    socket.connect(Number(port || 6379), hostname.replace(/^\[|\]$/g, ''), () => socket.write('PING\r\n'));
  });
}

/** The Redis URL to test against, or null (after a warning) when there is none. */
export async function redisPeer(): Promise<string | null> {
  try {
    await pingRedis(REDIS_URL);
    return REDIS_URL;
  } catch (err) {
    return unavailable('Redis', REDIS_URL, (err as Error).message);
  }
}

/** The PostgreSQL URL to test against, or null (after a warning) when there is none. */
export async function postgresPeer(): Promise<string | null> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: PROBE_MS });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return POSTGRES_URL;
  } catch (err) {
    return unavailable('PostgreSQL', POSTGRES_URL, (err as Error).message);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on (just bound and released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value or `ms` pass; returns the last value. */
export async function eventually<T>(check: () => Promise<T> | T, ms: number, every = 50): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const value = await check();
      if (value || Date.now() >= until) return value;
    } catch (err) {
      if (Date.now() >= until) throw err;
    }
    await sleep(every);
  }
}
