// EncryptedStore: the conformance suite through the wrapper, then what encryption at rest must
// guarantee: ciphertext at rest, AAD bound to the key, typed failures instead of garbage, key
// rotation with reencrypt(), and no key material in any error or warning.
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { isCertkeeperError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { runStoreConformance } from '../../src/testing/index.js';

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const b64 = (key: Buffer) => key.toString('base64');
const PEM =
  '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
const SECRET_KEY = 'certificates/i/a.example/01/key.pem';
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

await runStoreConformance('EncryptedStore(MemoryStore)', () => {
  const inner = new MemoryStore();
  const open = () => new EncryptedStore(inner, { keys: [K1], logger: silentLogger });
  // A second wrapper over the same data, as another replica with the same key would be.
  return { store: open(), second: open };
});

/** Everything an error exposes when logged or serialised. */
function exposed(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return [String(err), JSON.stringify(err), (err as Error).stack, cause ? String(cause) : ''].join('\n');
}

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  return run().then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('EncryptedStore', () => {
  const open = (inner: Store, keys: unknown[] = [K1], extra = {}) =>
    new EncryptedStore(inner, { keys: keys as never, logger: silentLogger, ...extra });

  it('stores sensitive values as AES-GCM envelopes, everything else unchanged', async () => {
    const inner = new MemoryStore();
    const store = open(inner);
    await store.put(SECRET_KEY, PEM);
    await store.put('certificates/i/a.example/01/cert.pem', 'CERT');
    const raw = (await inner.get(SECRET_KEY))!;
    expect(Buffer.from(raw.subarray(0, 4)).toString('latin1')).toBe('CKE\u0001');
    expect(Buffer.from(raw).toString('latin1')).not.toContain('PRIVATE KEY');
    expect(text(await inner.get('certificates/i/a.example/01/cert.pem'))).toBe('CERT');
    expect(text(await store.get(SECRET_KEY))).toBe(PEM);
    // Two writes of one value differ (fresh IV), and stat reports the plaintext size.
    await store.put('accounts/x/key.pem', PEM);
    expect(Buffer.from((await inner.get('accounts/x/key.pem'))!).equals(Buffer.from(raw))).toBe(false);
    expect((await store.stat(SECRET_KEY))?.size).toBe(Buffer.byteLength(PEM));
    expect((await inner.stat(SECRET_KEY))?.size).toBeGreaterThan(Buffer.byteLength(PEM));
  });

  it('a value moved or copied to another key fails to decrypt (AAD = the store key)', async () => {
    const inner = new MemoryStore();
    const store = open(inner);
    await store.put(SECRET_KEY, PEM);
    await inner.put('certificates/i/b.example/01/key.pem', (await inner.get(SECRET_KEY))!);
    const err = await failure(() => store.get('certificates/i/b.example/01/key.pem'));
    expect(err).toMatchObject({ code: 'STORE_CORRUPT', details: { reason: 'decrypt-failed' } });
  });

  it('every flipped bit, a truncation or a wrong key is STORE_CORRUPT, never garbage', async () => {
    const inner = new MemoryStore();
    const store = open(inner);
    await store.put(SECRET_KEY, PEM);
    const good = (await inner.get(SECRET_KEY))!;
    const header = 4 + 1 + good[4]!;
    // One bit in the IV, the ciphertext, the tag; the key id; a truncation.
    for (const at of [header, header + 12, good.length - 1, 5]) {
      const bad = new Uint8Array(good);
      bad[at]! ^= 0x01;
      await inner.put(SECRET_KEY, bad);
      expect(await failure(() => store.get(SECRET_KEY))).toMatchObject({ code: 'STORE_CORRUPT' });
    }
    await inner.put(SECRET_KEY, good.subarray(0, header + 10));
    expect(await failure(() => store.get(SECRET_KEY))).toMatchObject({ details: { reason: 'malformed' } });
    await inner.put(SECRET_KEY, good);
    // A key that is not configured at all: its id is unknown.
    expect(await failure(() => open(inner, [K2]).get(SECRET_KEY))).toMatchObject({
      code: 'STORE_CORRUPT',
      details: { reason: 'unknown-key' },
    });
    // The right id with other key bytes (a mistyped key): authentication fails.
    const named = new MemoryStore();
    await open(named, [{ id: 'k', key: K1 }]).put(SECRET_KEY, PEM);
    expect(await failure(() => open(named, [{ id: 'k', key: K2 }]).get(SECRET_KEY))).toMatchObject({
      code: 'STORE_CORRUPT',
      details: { reason: 'decrypt-failed' },
    });
  });

  it('rotates: several keys read, the first writes, reencrypt() rewrites what older keys sealed', async () => {
    const inner = new MemoryStore();
    await open(inner, [K1]).put(SECRET_KEY, PEM);
    await open(inner, [K1]).put('accounts/a/key.pem', 'account key');
    await inner.put('accounts/legacy/key.pem', 'plaintext from before encryption');
    const rotated = open(inner, [{ id: 'k2', key: b64(K2) }, K1], { acceptPlaintext: true });
    expect(text(await rotated.get(SECRET_KEY))).toBe(PEM);
    expect(await rotated.reencrypt()).toEqual({ examined: 3, rewritten: 3 });
    expect(await rotated.reencrypt()).toEqual({ examined: 3, rewritten: 0 });
    const onlyNew = open(inner, [{ id: 'k2', key: K2 }]);
    expect(text(await onlyNew.get(SECRET_KEY))).toBe(PEM);
    expect(text(await onlyNew.get('accounts/a/key.pem'))).toBe('account key');
    expect(text(await onlyNew.get('accounts/legacy/key.pem'))).toBe('plaintext from before encryption');
    expect(await failure(() => open(inner, [K1]).get(SECRET_KEY))).toMatchObject({
      details: { reason: 'unknown-key', keyId: 'k2' },
    });
  });

  it('refuses a plaintext private key unless migrating, and an envelope when it has no key', async () => {
    const inner = new MemoryStore();
    await inner.put(SECRET_KEY, PEM);
    expect(await failure(() => open(inner).get(SECRET_KEY))).toMatchObject({
      code: 'STORE_CORRUPT',
      details: { reason: 'not-encrypted' },
    });
    expect(text(await open(inner, [K1], { acceptPlaintext: true }).get(SECRET_KEY))).toBe(PEM);
    await open(inner).put(SECRET_KEY, PEM);
    expect(await failure(() => open(inner, []).get(SECRET_KEY))).toMatchObject({
      details: { reason: 'no-key' },
    });
  });

  it('reads keys from CERTKEEPER_ENCRYPTION_KEY (writing key first), or warns once without one', async () => {
    const inner = new MemoryStore();
    const env = { CERTKEEPER_ENCRYPTION_KEY: `new:${b64(K2)}, ${b64(K1)}` };
    await open(inner, [K1]).put(SECRET_KEY, PEM);
    const fromEnv = new EncryptedStore(inner, { env, logger: silentLogger });
    expect(text(await fromEnv.get(SECRET_KEY))).toBe(PEM);
    await fromEnv.put('accounts/a/key.pem', 'x');
    expect(Buffer.from((await inner.get('accounts/a/key.pem'))!.subarray(5, 8)).toString()).toBe('new');

    const warn = vi.fn();
    const plain = new EncryptedStore(new MemoryStore(), { env: {}, logger: { ...silentLogger, warn } });
    await plain.put(SECRET_KEY, PEM);
    await plain.put('accounts/a/key.pem', PEM);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/no encryption key.*CERTKEEPER_ENCRYPTION_KEY.*UNENCRYPTED/);
  });

  it('validates keys eagerly and never echoes key material in errors', async () => {
    const secret = b64(randomBytes(24)); // valid base64, wrong length
    const cases: unknown[] = [
      { keys: [secret] },
      { keys: [`bad id!:${b64(K1)}`] },
      { keys: ['not base64 ***'] },
      { keys: [{ id: 'a', key: 5 }] },
      { keys: [K1, K1] },
      { keys: 'k' },
      { env: { CERTKEEPER_ENCRYPTION_KEY: `${b64(K1)},${secret}` } },
      { isSensitive: true },
    ];
    for (const options of cases) {
      let error: unknown;
      try {
        new EncryptedStore(new MemoryStore(), { logger: silentLogger, ...(options as object) });
      } catch (err) {
        error = err;
      }
      expect(isCertkeeperError(error, 'INVALID_OPTION'), JSON.stringify(options)).toBe(true);
      expect(exposed(error)).not.toContain(secret);
      expect(exposed(error)).not.toContain(b64(K1));
    }
    expect(() => new EncryptedStore(null as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );

    const inner = new MemoryStore();
    await open(inner).put(SECRET_KEY, PEM);
    const err = await failure(() => open(inner, [K2]).get(SECRET_KEY));
    for (const forbidden of [b64(K1), b64(K2), K1.toString('hex'), 'PRIVATE KEY', 'MIGHAgEA']) {
      expect(exposed(err)).not.toContain(forbidden);
    }
  });

  it('has watch exactly when the wrapped store has it, and forwards it', async () => {
    expect(open(new MemoryStore()).watch).toBeUndefined();
    const unwatch = () => {};
    const inner = Object.assign(new MemoryStore(), { watch: vi.fn(async () => unwatch) });
    const store = open(inner);
    const listener = () => {};
    expect(await store.watch!('certificates', listener)).toBe(unwatch);
    expect(inner.watch).toHaveBeenCalledWith('certificates', listener);
  });
});
