import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createCsr, inspectCsr } from '../../src/crypto/csr.js';
import { KEY_TYPES, PrivateKey } from '../../src/crypto/keys.js';

describe('createCsr', () => {
  it.each(KEY_TYPES.filter((t) => !t.startsWith('rsa-') || t === 'rsa-2048'))(
    'signs a multi-name CSR with %s that OpenSSL verifies',
    async (type) => {
      const key = await PrivateKey.generate(type);
      const csr = await createCsr({ key, names: ['a.test', '*.b.test', '10.0.0.1', '::1'] });
      const text = execFileSync('openssl', ['req', '-verify', '-noout', '-text'], {
        input: csr.pem,
        stdio: ['pipe', 'pipe', 'pipe'],
      }).toString();
      expect(text).toMatch(
        /DNS:a\.test, DNS:\*\.b\.test, IP Address:10\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/,
      );
      expect(text).toMatch(/Subject: CN\s?=\s?a\.test/);
      const read = await inspectCsr(csr.pem);
      expect(read.signatureValid).toBe(true);
      expect(read.names.map((n) => n.value)).toEqual(['a.test', '*.b.test', '10.0.0.1', '::1']);
    },
  );

  it('omits the CN on request and when the first name is over 64 characters', async () => {
    const key = await PrivateKey.generate();
    expect(
      (await inspectCsr((await createCsr({ key, names: ['a.test'], commonName: false })).pem)).commonName,
    ).toBeNull();
    const long = `${'a'.repeat(60)}.example.test`;
    expect((await inspectCsr((await createCsr({ key, names: [long] })).pem)).commonName).toBeNull();
    expect(
      (await inspectCsr((await createCsr({ key, names: ['a.test'], commonName: 'svc, "x"' })).pem))
        .commonName,
    ).toBe('svc, "x"');
  });

  it('refuses no names and invalid names', async () => {
    const key = await PrivateKey.generate();
    await expect(createCsr({ key, names: [] })).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(createCsr({ key, names: ['a/../b'] })).rejects.toMatchObject({ code: 'INVALID_NAME' });
  });

  it('inspectCsr refuses garbage', async () => {
    await expect(inspectCsr('not a csr')).rejects.toMatchObject({ code: 'MALFORMED_PEM' });
  });
});
