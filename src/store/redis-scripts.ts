/**
 * The Lua scripts behind `RedisStore`. A script runs atomically on the server, so "write the
 * value, index the key and announce it" or "check the owner, then release" can never interleave
 * with another client. Times come from Redis (`TIME`, `PX`), so leases do not depend on the
 * clocks of the replicas. Internal.
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const NOW_MS = `local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

/** KEYS: value hash, index. ARGV: bytes, store key, channel. */
export const PUT = script(`${NOW_MS}
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'm', now)
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return now`);

/** KEYS: value hash, index. ARGV: store key, channel. Returns 1 when the key existed. */
export const DELETE = script(`local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return n`);

/** KEYS: value hash. Returns { size, modified ms } or nil. */
export const STAT = script(`local m = redis.call('HGET', KEYS[1], 'm')
if not m then return nil end
return { redis.call('HSTRLEN', KEYS[1], 'd'), m }`);

/**
 * KEYS: index. ARGV: prefix ('' for all), value-key prefix. The index is a sorted set with every
 * score 0, so ZRANGEBYLEX walks keys in byte order: "p/" up to (excluding) "p0" is exactly the
 * keys below "p" ('0' is the byte after '/'), with no pattern syntax to escape. An index entry
 * whose value is gone (deleted behind the store's back, evicted) is dropped, not listed.
 */
export const LIST = script(`local out = {}
local function keep(k)
  if redis.call('EXISTS', ARGV[2] .. k) == 1 then out[#out + 1] = k else redis.call('ZREM', KEYS[1], k) end
end
if ARGV[1] == '' then
  for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do keep(k) end
else
  if redis.call('ZSCORE', KEYS[1], ARGV[1]) then keep(ARGV[1]) end
  for _, k in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], '[' .. ARGV[1] .. '/', '(' .. ARGV[1] .. '0')) do keep(k) end
end
return out`);

/**
 * KEYS: lock, fencing counter. ARGV: owner, ttl ms. The lock value is "token:owner:ttl".
 * SET NX PX takes the lease; the counter is INCRemented only when it did, and is never expired
 * or deleted, so tokens strictly increase per lock name. Returns { token, 0 } or { 0, ms left }.
 */
export const ACQUIRE = script(`local token = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
local value = token .. ':' .. ARGV[1] .. ':' .. ARGV[2]
if not redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2]) then
  return { 0, redis.call('PTTL', KEYS[1]) }
end
return { redis.call('INCR', KEYS[2]), 0 }`);

/**
 * KEYS: lock. ARGV: "token:owner:", new ttl ms or ''. Extends only a lease that still holds
 * exactly this token and owner: a lapsed one has expired away, a taken-over one holds another
 * value. Returns the ttl applied, or -1 when the lease is lost.
 */
export const RENEW = script(`local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return -1 end
local ttl = tonumber(ARGV[2]) or tonumber(string.sub(v, #ARGV[1] + 1))
redis.call('SET', KEYS[1], ARGV[1] .. ttl, 'PX', ttl)
return ttl`);

/** KEYS: lock. ARGV: "token:owner:". Deletes only our own lease. Returns 1 when it did. */
export const RELEASE = script(`local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`);

/** The subset of an ioredis client the scripts need. */
interface Caller {
  callBuffer(command: string, ...args: (string | Buffer | number)[]): Promise<unknown>;
}

/**
 * EVALSHA, falling back to EVAL (which also caches the script) when the server does not know it:
 * after a Redis restart or SCRIPT FLUSH, or on first use.
 */
export async function run(
  client: Caller,
  s: Script,
  keys: string[],
  args: (string | Buffer | number)[],
): Promise<unknown> {
  try {
    return await client.callBuffer('EVALSHA', s.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.callBuffer('EVAL', s.lua, keys.length, ...keys, ...args);
  }
}
