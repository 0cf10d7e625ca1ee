import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KEY_TYPES, keyTypeOf, PrivateKey } from '../../src/crypto/keys.js';

describe('PrivateKey', () => {
  it.each(KEY_TYPES.filter((t) => t !== 'rsa-4096' && t !== 'rsa-3072'))(
    'generates, exports and re-imports %s',
    async (type) => {
      const key = await PrivateKey.generate(type);
      expect(key.type).toBe(type);
      const pem = key.toPem();
      expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      const again = PrivateKey.fromPem(pem);
      expect(again.type).toBe(type);
      expect(again.publicKeyFingerprint()).toBe(key.publicKeyFingerprint());
    },
  );

  it('generates RSA 3072 and 4096 keys of the right size', async () => {
    const [k3, k4] = await Promise.all([PrivateKey.generate('rsa-3072'), PrivateKey.generate('rsa-4096')]);
    expect(k3.keyObject.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(k4.keyObject.asymmetricKeyDetails?.modulusLength).toBe(4096);
  }, 60_000);

  it('defaults to ECDSA P-256', async () => {
    expect((await PrivateKey.generate()).type).toBe('ec-p256');
  });

  it('imports SEC1 and PKCS#1 PEM as well as PKCS#8', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(PrivateKey.fromPem(ec.export({ type: 'sec1', format: 'pem' }) as string).type).toBe('ec-p384');
    expect(PrivateKey.fromPem(rsa.export({ type: 'pkcs1', format: 'pem' }) as string).type).toBe('rsa-2048');
  });

  it('refuses two keys in one PEM', async () => {
    const a = await PrivateKey.generate();
    const b = await PrivateKey.generate();
    expect(() => PrivateKey.fromPem(a.toPem() + b.toPem())).toThrowError(
      expect.objectContaining({ code: 'MALFORMED_PEM', message: expect.stringMatching(/found 2/) }),
    );
  });

  it('refuses a PEM with no key, and a key block with garbage DER', () => {
    expect(() => PrivateKey.fromPem('garbage')).toThrowError(
      expect.objectContaining({ code: 'MALFORMED_PEM' }),
    );
    const fake = '-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n';
    expect(() => PrivateKey.fromPem(fake)).toThrowError(expect.objectContaining({ code: 'MALFORMED_PEM' }));
  });

  it('refuses unsupported keys with UNSUPPORTED_KEY', () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const enc = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'x',
    });
    for (const pem of [p521, rsa1024, enc]) {
      expect(() => PrivateKey.fromPem(pem as string)).toThrowError(
        expect.objectContaining({ code: 'UNSUPPORTED_KEY' }),
      );
    }
    // @ts-expect-error: unknown key type on purpose
    return expect(PrivateKey.generate('dsa-1024')).rejects.toMatchObject({ code: 'UNSUPPORTED_KEY' });
  });

  it('never prints key material through toString, JSON or inspect', async () => {
    const key = await PrivateKey.generate();
    const body = key.toPem().split('\n')[1]!;
    for (const shown of [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: { key } })]) {
      expect(shown).not.toContain(body.slice(0, 20));
      expect(shown).toContain('ec-p256');
    }
  });

  it('keyTypeOf reads public keys too', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(keyTypeOf(publicKey)).toBe('ed25519');
    expect(
      keyTypeOf(
        createPrivateKey(generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' })),
      ),
    ).toBeNull();
  });
});
