/**
 * Connecting `RedisStore`: its connection options, checked when the store is created, and waiting
 * for a client to be ready within an operation's deadline. Internal.
 */
import type { Redis } from 'ioredis';
import { describeCause, optionError } from '../errors.js';
import type { RedisClientLike, RedisStoreOptions } from './redis-store.js';

/** Where the store's client comes from. */
export type Source = { url: string } | { connection: Record<string, unknown> } | { client: Redis };

const PREFIX = /^[A-Za-z0-9_.-]{1,64}$/;
/** Reconnect forever: quickly at first, then every 2 s. A store outlives a Redis restart. */
export const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000);

export function validate(options: RedisStoreOptions): { source: Source; prefix: string } {
  if (options === null || typeof options !== 'object') {
    throw optionError('options', 'must be an object with url, connection or client');
  }
  const { url, connection, client, prefix = 'certkeeper' } = options;
  const given = [url, connection, client].filter((v) => v !== undefined).length;
  if (given !== 1) throw optionError('url', `(or connection, or client): give exactly one, got ${given}`);
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw optionError('prefix', 'must match [A-Za-z0-9_.-]{1,64} (no ":" so prefixes cannot overlap)');
  }
  let source: Source;
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(String(url));
    } catch {
      // reported below
    }
    if (typeof url !== 'string' || !parsed || !/^rediss?:$/.test(parsed.protocol)) {
      throw optionError('url', 'must be a redis:// or rediss:// URL');
    }
    source = { url };
  } else if (connection !== undefined) {
    if (connection === null || typeof connection !== 'object')
      throw optionError('connection', 'must be an object');
    source = { connection };
  } else {
    const c = client as Partial<RedisClientLike> | null;
    if (
      !c ||
      typeof c !== 'object' ||
      typeof c.callBuffer !== 'function' ||
      typeof c.duplicate !== 'function'
    ) {
      throw optionError('client', 'must be an ioredis client');
    }
    source = { client: client as unknown as Redis };
  }
  return { source, prefix };
}

/** Resolves when `client` is ready; rejects when it ends, when `signal` aborts, or (if `failFast`) on an error. */
export function whenReady(
  client: Redis,
  signal: AbortSignal,
  failFast: boolean,
  lastError: () => unknown,
): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'wait') client.connect().catch(() => {});
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      client.off('ready', onReady);
      client.off('end', onEnd);
      client.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (why: unknown) => {
      cleanup();
      reject(new Error(`Redis is not reachable: ${describeCause(why)}`));
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => fail(lastError() ?? 'connection closed');
    const onError = (err: unknown) => failFast && fail(err);
    const onAbort = () => fail(lastError() ?? signal.reason);
    if (client.status === 'end') return fail(lastError() ?? 'connection closed');
    client.on('ready', onReady);
    client.on('end', onEnd);
    client.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
