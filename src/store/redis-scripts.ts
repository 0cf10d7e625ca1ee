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

/**
 * Makes sure the index (KEYS[2]) is a sorted set before a script touches it. Anything else there
 * is garbage (written behind the store's back) and would fail every write with WRONGTYPE: it is
 * replaced by an index rebuilt from the value hashes, found by SCAN under the value-key prefix
 * (`<prefix>:v:`, whose characters are never glob syntax). Atomic like the rest of the script, so
 * no write or listing sees a half-built index; it blocks Redis for one pass over its keys, once.
 */
const INDEX_READY = `local function index_ready(index, values)
  local kind = redis.call('TYPE', index)['ok']
  if kind == 'zset' or kind == 'none' then return end
  redis.call('DEL', index)
  local cursor = '0'
  repeat
    local page = redis.call('SCAN', cursor, 'MATCH', values .. '*', 'COUNT', 1000)
    cursor = page[1]
    for _, k in ipairs(page[2]) do redis.call('ZADD', index, 0, string.sub(k, #values + 1)) end
  until cursor == '0'
end`;

/**
 * Whether the lock key holds the lease "token:owner:". A lapsed lease has expired
 * away, a released one is deleted, a taken-over one holds another value; anything but a string
 * there is not a lease either. Checked in the script that writes, so nothing can acquire the lock
 * between the check and the write: this is what fences a write.
 */
const HELD = `local function held(lock, lease)
  if redis.call('TYPE', lock)['ok'] ~= 'string' then return false end
  return string.sub(redis.call('GET', lock), 1, #lease) == lease
end`;

const WRITE = `${INDEX_READY}
index_ready(KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'm', now)
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return now`;

const REMOVE = `${INDEX_READY}
index_ready(KEYS[2], ARGV[3])
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return n`;

/** KEYS: value hash, index. ARGV: bytes, store key, channel, value-key prefix. */
export const PUT = script(`${NOW_MS}
${WRITE}`);

/**
 * `PUT` under a fence: KEYS[3] is the lock, ARGV[5] "token:owner:". Returns 0, having written
 * (and announced) nothing, when that lease is not held.
 */
export const PUT_FENCED = script(`${NOW_MS}
${HELD}
if not held(KEYS[3], ARGV[5]) then return 0 end
${WRITE}`);

/** KEYS: value hash, index. ARGV: store key, channel, value-key prefix. Returns 1 when the key existed. */
export const DELETE = script(REMOVE);

/**
 * `DELETE` under a fence: KEYS[3] is the lock, ARGV[4] "token:owner:". Returns -1, having
 * deleted nothing, when that lease is not held.
 */
export const DELETE_FENCED = script(`${HELD}
if not held(KEYS[3], ARGV[4]) then return -1 end
${REMOVE}`);

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
export const LIST = script(`${INDEX_READY}
index_ready(KEYS[1], ARGV[2])
local out = {}
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
 *
 * Garbage is repaired before anything is written, so the script cannot fail half-way (a failed
 * INCR after the SET used to leave the lock held for a whole lease on every attempt):
 * - a counter that is not a decimal integer below 2^53 restarts at the Redis clock in ms, above
 *   any token issued before it (that would take more than one acquisition per millisecond since
 *   1970);
 * - a lock with no expiry, of the wrong type, not shaped "token:owner:ttl", or expiring later
 *   than its own recorded ttl was not written by this script: it can only be garbage, and is
 *   given the caller's lease (never lengthened), after which it lapses and is taken over.
 */
export const ACQUIRE = script(`local ttl = tonumber(ARGV[2])
local fence = 0
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind == 'string' then
  local v = redis.call('GET', KEYS[2])
  if string.match(v, '^%d+$') and #v <= 15 then fence = tonumber(v) else kind = 'garbage' end
elseif kind ~= 'none' then
  kind = 'garbage'
end
if kind == 'garbage' then
  local t = redis.call('TIME')
  fence = t[1] * 1000 + math.floor(t[2] / 1000)
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[2], string.format('%d', fence))
end
local value = string.format('%d', fence + 1) .. ':' .. ARGV[1] .. ':' .. ARGV[2]
if redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2]) then
  return { redis.call('INCR', KEYS[2]), 0 }
end
local left = redis.call('PTTL', KEYS[1])
local recorded
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
  recorded = tonumber(string.match(redis.call('GET', KEYS[1]), '^%d+:[^:]+:(%d+)$'))
end
if (left < 0 or not recorded or left > recorded) and (left < 0 or left > ttl) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = ttl
end
return { 0, left }`);

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
