// Bootstrap (fingerprint → pinned root) and minting (the claims step-ca expects, every key form).
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactEncrypt, calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProvisionerKey, mintRevokeToken, mintToken } from '../../../src/issuers/step-ca/mint.js';
import { enrollmentKey } from '../../../src/issuers/step-ca/spent-tokens.js';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { context, makeRequest, mint } from '../../support/step-ca/harness.js';

let ca: FakeStepCa;
let other: FakeStepCa;
let dir: string;
beforeAll(async () => {
  [ca, other] = await Promise.all([FakeStepCa.start(), FakeStepCa.start()]);
  dir = mkdtempSync(join(tmpdir(), 'certkeeper-boot-'));
});
afterAll(async () => {
  await Promise.all([ca.stop(), other.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const rootFetches = (c: FakeStepCa) => c.log.filter((e) => e.path.startsWith('/root/')).length;

describe('bootstrap', () => {
  it('fetches /root/{fp} unverified, checks the hash, pins and stores it (fingerprint in any common spelling)', async () => {
    const spelled = ca.rootFingerprint.toUpperCase().match(/../g)!.join(':');
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootFingerprint: spelled });
    const store = new MemoryStore();
    expect(await issuer.trustAnchors(context(store))).toEqual([ca.rootPem]);
    // A restart with the CA down still knows the root: it was stored, and is re-checked by hash.
    await ca.stop();
    try {
      const again = new StepCaIssuer({ caUrl: ca.url, rootFingerprint: ca.rootFingerprint });
      expect(await again.trustAnchors(context(store))).toEqual([ca.rootPem]);
      const fresh = new StepCaIssuer({ caUrl: ca.url, rootFingerprint: ca.rootFingerprint });
      await expect(fresh.trustAnchors(context(new MemoryStore()))).rejects.toMatchObject({
        code: 'ISSUER_UNAVAILABLE',
      });
    } finally {
      await ca.listen();
    }
  });

  it('a CA without the configured root is a hard error naming both fingerprints', async () => {
    const issuer = new StepCaIssuer({ caUrl: other.url, rootFingerprint: ca.rootFingerprint });
    const error = await issuer.trustAnchors(context()).catch((e) => e);
    expect(error.code).toBe('ROOT_FINGERPRINT_MISMATCH');
    expect(error.message).toContain(ca.rootFingerprint);
    expect(error.message).toContain(other.rootFingerprint);
  });

  it('a root that does not hash to the fingerprint (a man in the middle) is refused, naming both', async () => {
    other.impostor = true;
    try {
      const token = await mint(ca, { subject: 'a.test', caUrl: other.url });
      const issuer = new StepCaIssuer({ caUrl: other.url, rootFingerprint: ca.rootFingerprint, token });
      const error = await issuer.issue(await makeRequest(['a.test']), context()).catch((e) => e);
      expect(error.code).toBe('ROOT_FINGERPRINT_MISMATCH');
      expect(error.message).toMatch(new RegExp(`configured ${ca.rootFingerprint}.*${other.rootFingerprint}`));
      expect(other.requests('/1.0/sign')).toBe(0);
    } finally {
      other.impostor = false;
    }
  });

  it('after pinning, a CA with a TLS certificate from another root is not talked to', async () => {
    // The token (from the orchestrator) names the pinned root; the server at the URL is another CA.
    const token = await mint(other, { subject: 'a.test', rootFingerprint: ca.rootFingerprint });
    const issuer = new StepCaIssuer({ caUrl: other.url, rootPem: ca.rootPem, token });
    const error = await issuer.issue(await makeRequest(['a.test']), context()).catch((e) => e);
    expect(error.code).toBe('ISSUER_UNAVAILABLE');
    expect(error.message).toMatch(/certificate/i);
    expect(other.requests('/1.0/sign')).toBe(0);
  });

  it('a root PEM file is accepted instead (no fetch); a file and a fingerprint that disagree fail at construction', async () => {
    const file = join(dir, 'root_ca.crt');
    writeFileSync(file, ca.rootPem);
    const before = rootFetches(ca);
    const token = await mint(ca, { subject: 'a.test' });
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootFile: file, token });
    expect(issuer.rootFingerprint).toBe(ca.rootFingerprint);
    await issuer.issue(await makeRequest(['a.test']), context());
    expect(rootFetches(ca)).toBe(before);
    expect(
      () => new StepCaIssuer({ caUrl: ca.url, rootFile: file, rootFingerprint: other.rootFingerprint }),
    ).toThrowError(expect.objectContaining({ code: 'ROOT_FINGERPRINT_MISMATCH' }));
  });

  it('a cached root with a certificate appended is refused: the appended CA never sees the token', async () => {
    // Whoever can write the store appends their own CA to the cached root of an issuer whose CA
    // URL they can also answer (here: `other`, a CA that does not hold the pinned root).
    const store = new MemoryStore();
    const attacked = new StepCaIssuer({ caUrl: other.url, rootFingerprint: ca.rootFingerprint });
    await store.put(enrollmentKey(attacked.id, 'root.pem'), ca.rootPem + other.rootPem);
    const token = await mint(ca, { subject: 'a.test', caUrl: other.url });
    const victim = new StepCaIssuer({ caUrl: other.url, rootFingerprint: ca.rootFingerprint, token });
    const before = other.requests('/1.0/sign');
    const error = await victim.issue(await makeRequest(['a.test']), context(store)).catch((e) => e);
    expect(error.code).toBe('ROOT_FINGERPRINT_MISMATCH');
    expect(other.requests('/1.0/sign')).toBe(before);
  });

  it('the cached root is exactly one certificate, the pinned one, on read and on write', async () => {
    const store = new MemoryStore();
    const key = enrollmentKey(
      new StepCaIssuer({ caUrl: ca.url, rootFingerprint: ca.rootFingerprint }).id,
      'root.pem',
    );
    for (const planted of [ca.rootPem + other.rootPem, `${ca.rootPem}\n${ca.rootPem}`]) {
      await store.put(key, planted);
      const issuer = new StepCaIssuer({ caUrl: ca.url, rootFingerprint: ca.rootFingerprint });
      expect(await issuer.trustAnchors(context(store))).toEqual([ca.rootPem]);
      expect(await issuer.rootCertificate(context(store))).toBe(ca.rootPem);
      // Re-fetched and re-written as the one pinned certificate.
      expect(Buffer.from((await store.get(key))!).toString()).toBe(ca.rootPem);
    }
  });

  it.each([
    [{ caUrl: 'http://ca.test' }, /caUrl must be an https URL/],
    [{ caUrl: 'https://ca.test' }, /rootFingerprint or rootFile or rootPem is required/],
    [{ caUrl: 'https://ca.test', rootFingerprint: 'abc' }, /rootFingerprint must be a SHA-256/],
    [{ caUrl: 'https://ca.test', rootFile: '/nonexistent/root.crt' }, /rootFile cannot be read/],
    [{ caUrl: 'https://ca.test', rootFingerprint: 'ab'.repeat(32), token: { env: '1X' } }, /token\.env/],
    [{ caUrl: 'https://ca.test', rootFingerprint: 'ab'.repeat(32), lifetimeMs: 5 }, /lifetimeMs/],
  ])('options are validated at construction: %j', (options, message) => {
    expect(() => new StepCaIssuer(options as never)).toThrowError(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(message) }),
    );
  });
});

describe('minting', () => {
  const base = () => ({
    caUrl: ca.url,
    rootFingerprint: ca.rootFingerprint,
    provisioner: ca.provisioner.name,
  });

  it('has the header and claims step-ca expects', async () => {
    const now = Date.now();
    const token = await mintToken({ ...base(), key: ca.provisioner.privateJwk, subject: 'a.test', now });
    expect(decodeProtectedHeader(token)).toEqual({
      alg: 'ES256',
      kid: await calculateJwkThumbprint(ca.provisioner.publicJwk),
      typ: 'JWT',
    });
    const { payload } = await jwtVerify(token, await importJWK(ca.provisioner.publicJwk, 'ES256'));
    const t = Math.floor(now / 1000);
    expect(payload).toEqual({
      iss: ca.provisioner.name,
      sub: 'a.test',
      sans: ['a.test'],
      aud: `${ca.url}/1.0/sign`,
      nbf: t,
      iat: t,
      exp: t + 300,
      jti: expect.stringMatching(/^[0-9a-f]{64}$/),
      sha: ca.rootFingerprint,
    });
  });

  it("decrypts step-ca's encrypted key (PBES2-HS256+A128KW) with its password, and the CA accepts the token", async () => {
    const { encryptedKey, password } = ca.provisioner;
    const token = await mintToken({ ...base(), key: encryptedKey, password, subject: 'a.test' });
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem, token });
    await expect(issuer.issue(await makeRequest(['a.test']), context())).resolves.toHaveProperty('chainPem');
  });

  it('a wrong or missing password is PROVISIONER_KEY_INVALID and never echoed', async () => {
    for (const password of ['not the password', undefined]) {
      const error = await mintToken({
        ...base(),
        key: ca.provisioner.encryptedKey,
        password,
        subject: 'a.test',
      }).catch((e) => e);
      expect(error.code).toBe('PROVISIONER_KEY_INVALID');
      expect(error.message).not.toContain('not the password');
    }
  });

  it('an encrypted key asking for more PBKDF2 iterations than step ever uses is refused before deriving', async () => {
    const encrypt = (p2c: number) =>
      new CompactEncrypt(new TextEncoder().encode(JSON.stringify(ca.provisioner.privateJwk)))
        .setProtectedHeader({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', cty: 'jwk+json' })
        .setKeyManagementParameters({ p2c })
        .encrypt(new TextEncoder().encode(ca.provisioner.password));
    const { password } = ca.provisioner;
    // 600 000 (the OWASP figure step uses for its PEM keys) is accepted ...
    await expect(loadProvisionerKey({ key: await encrypt(600_000), password })).resolves.toMatchObject({
      kid: ca.provisioner.kid,
    });
    // ... one more than the cap is not, with the right password, and the reason says why.
    await expect(loadProvisionerKey({ key: await encrypt(1_000_001), password })).rejects.toMatchObject({
      code: 'PROVISIONER_KEY_INVALID',
      message: expect.stringMatching(/1000001 PBKDF2 iterations.*at most 1000000/),
    });
  });

  it('accepts a PEM private key (kid = thumbprint) and refuses a public key', async () => {
    const pem = createPrivateKey({ key: ca.provisioner.privateJwk as never, format: 'jwk' }).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const loaded = await loadProvisionerKey({ key: pem });
    expect(loaded).toMatchObject({ kid: ca.provisioner.kid, alg: 'ES256' });
    const { d: _d, ...publicOnly } = ca.provisioner.privateJwk;
    await expect(loadProvisionerKey({ key: publicOnly })).rejects.toMatchObject({
      code: 'PROVISIONER_KEY_INVALID',
    });
    await expect(loadProvisionerKey({ key: 'garbage' })).rejects.toMatchObject({
      code: 'PROVISIONER_KEY_INVALID',
    });
  });

  it('a revocation token has sub = the serial in decimal and the revoke audience', async () => {
    const token = await mintRevokeToken({ ...base(), key: ca.provisioner.privateJwk, serial: '0x0a:ff' });
    const { payload } = await jwtVerify(token, await importJWK(ca.provisioner.publicJwk, 'ES256'));
    expect(payload).toMatchObject({ sub: '2815', aud: `${ca.url}/1.0/revoke` });
  });

  it.each([
    [{ caUrl: 'http://ca.test' }, /caUrl must be an https URL/],
    [{ rootFingerprint: 'xyz' }, /rootFingerprint/],
    [{ subject: '' }, /subject/],
    [{ lifetimeMs: 10 }, /lifetimeMs/],
  ])('options are validated: %j', async (override, message) => {
    await expect(
      mintToken({ ...base(), key: ca.provisioner.privateJwk, subject: 'a.test', ...override }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(message) });
  });
});

describe('a CA URL with a path', () => {
  it('fetches /<path>/root/<fingerprint>, not /root/<fingerprint>', async () => {
    const { createServer } = await import('node:https');
    const { fetchRoot, rootFingerprint } = await import('../../../src/issuers/step-ca/bootstrap.js');
    const { makePki } = await import('../../support/pki.js');
    const pki = await makePki({ names: ['127.0.0.1'] });
    const fingerprint = rootFingerprint(pki.rootPem);
    const seen: string[] = [];
    const server = createServer({ key: pki.keyPem, cert: pki.chainPem }, (req, res) => {
      seen.push(req.url ?? '');
      if (req.url === `/step-ca/root/${fingerprint}`) res.end(JSON.stringify({ ca: pki.rootPem }));
      else
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"status":404,"message":"not found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as import('node:net').AddressInfo;
      const caUrl = new URL(`https://127.0.0.1:${port}/step-ca`);
      await expect(fetchRoot({ caUrl, fingerprint, timeoutMs: 5000 })).resolves.toContain(
        'BEGIN CERTIFICATE',
      );
      expect(seen).toEqual([`/step-ca/root/${fingerprint}`]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('enrollment when the spent mark cannot be written', () => {
  it('still returns the certificate the token bought (and says so in a warning)', async () => {
    const own = await FakeStepCa.start();
    try {
      const token = await mint(own, { subject: 'spent.test' });
      const issuer = new StepCaIssuer({ caUrl: own.url, rootFingerprint: own.rootFingerprint, token });
      const memory = new MemoryStore();
      const store = new Proxy(memory, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (prop === 'put') {
            return async (key: string, data: Uint8Array | string) => {
              if (key.startsWith('enrollment/') && key.includes('/tokens/')) throw new Error('disk full');
              return (value as MemoryStore['put']).call(target, key, data);
            };
          }
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, error() {}, warn: (m: string) => void warnings.push(m) };
      const issued = await issuer.issue(await makeRequest(['spent.test']), context(store, { logger }));
      expect(issued.chainPem).toContain('BEGIN CERTIFICATE');
      expect(warnings.some((w) => /spent enrollment token/.test(w))).toBe(true);
    } finally {
      await own.stop();
    }
  });
});
