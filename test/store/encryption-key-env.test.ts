// CERTKEEPER_ENCRYPTION_KEY is read once and removed from process.env, so that child processes
// (spawn, exec, fork, cluster workers) do not inherit the key that protects every private key of
// the fleet; stores made later in this process still get it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';

const VAR = 'CERTKEEPER_ENCRYPTION_KEY';
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');
const SECRET = 'certificates/i/a.example/01/key.pem';
const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
const keyIdOf = async (inner: MemoryStore) =>
  Buffer.from((await inner.get(SECRET))!.subarray(5, 7)).toString();

/** What a child process started now would see. */
const childSees = () =>
  execFileSync(process.execPath, ['-e', `process.stdout.write(String(process.env.${VAR}))`]).toString();

describe(`${VAR}`, () => {
  afterEach(() => {
    delete process.env[VAR];
  });

  it('is read once and removed from process.env: children do not inherit it, later stores still have it', async () => {
    process.env[VAR] = `k1:${K1}`;
    expect(childSees()).toBe(`k1:${K1}`); // the environment is what a child inherits
    const inner = new MemoryStore();
    const first = new EncryptedStore(inner, { logger: silentLogger });
    expect(process.env[VAR]).toBeUndefined();
    expect(childSees()).toBe('undefined');
    await first.put(SECRET, PEM);
    expect(await keyIdOf(inner)).toBe('k1');

    const later = new EncryptedStore(inner, { logger: silentLogger });
    expect(text(await later.get(SECRET))).toBe(PEM);
    // A network store made later is not refused for want of a key: it has the one read before.
    const redis = new RedisStore({ url: 'redis://127.0.0.1:6379', logger: silentLogger });
    await redis.close();

    // Set again (a rotation by the application): the new value is read, and removed in turn.
    process.env[VAR] = `k2:${K2},k1:${K1}`;
    const rotated = new EncryptedStore(inner, { logger: silentLogger });
    expect(process.env[VAR]).toBeUndefined();
    await rotated.put(SECRET, PEM);
    expect(await keyIdOf(inner)).toBe('k2');
    expect(text(await new EncryptedStore(inner, { logger: silentLogger }).get(SECRET))).toBe(PEM);
  });

  it('an env object passed explicitly is read and left as it is', async () => {
    const env = { [VAR]: `k1:${K1}` };
    const inner = new MemoryStore();
    await new EncryptedStore(inner, { env, logger: silentLogger }).put(SECRET, PEM);
    expect(env[VAR]).toBe(`k1:${K1}`);
    expect(await keyIdOf(inner)).toBe('k1');
  });
});
