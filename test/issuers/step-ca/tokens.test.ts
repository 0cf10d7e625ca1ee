// The service's side of one-time tokens: checks before use (each its own typed error, and the
// token never reaches the CA), single use (remembered in the store), and the token sources.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { readToken, tokenId } from '../../../src/issuers/step-ca/token.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { context, makeRequest, mint } from '../../support/step-ca/harness.js';

let ca: FakeStepCa;
let dir: string;
beforeAll(async () => {
  ca = await FakeStepCa.start();
  dir = mkdtempSync(join(tmpdir(), 'certkeeper-token-'));
});
afterAll(async () => {
  await ca.stop();
  rmSync(dir, { recursive: true, force: true });
});

const names = ['api.test', '10.0.0.7'];
const signs = () => ca.requests('/1.0/sign');

function issuer(token: ConstructorParameters<typeof StepCaIssuer>[0]['token']) {
  return new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem, token });
}

describe('checked before use: the CA never sees a token it would refuse', () => {
  it.each([
    ['expired', { now: Date.now() - 10 * 60_000 }, 'TOKEN_EXPIRED', /expired at .*mint a new one/],
    ['not yet valid', { now: Date.now() + 5 * 60_000 }, 'TOKEN_NOT_YET_VALID', /clocks .* differ/],
    [
      'for another CA host',
      { caUrl: 'https://ca.elsewhere.test:9000' },
      'TOKEN_AUDIENCE_MISMATCH',
      /ca\.elsewhere\.test/,
    ],
    ['for another root', { rootFingerprint: 'ab'.repeat(32) }, 'TOKEN_ROOT_MISMATCH', /abab.*pins root/],
    [
      'for other names',
      { sans: ['api.test', 'admin.test'] },
      'TOKEN_NAMES_MISMATCH',
      /admin\.test.*configured for/,
    ],
    [
      'for names written differently',
      { sans: ['API.test', '10.0.0.7'] },
      'TOKEN_NAMES_MISMATCH',
      /compares them as written/,
    ],
  ])('a token %s is refused with its own code', async (_what, options, code, message) => {
    const token = await mint(ca, { subject: 'api.test', sans: names, ...options });
    const before = signs();
    const error = await issuer(token)
      .issue(await makeRequest(names), context())
      .catch((e) => e);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(signs()).toBe(before);
  });

  it('skew inside the leeway is accepted: a token minted 45 s in the future', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names, now: Date.now() + 45_000 });
    await expect(issuer(token).issue(await makeRequest(names), context())).resolves.toHaveProperty(
      'chainPem',
    );
  });

  it('a malformed token is TOKEN_MALFORMED (from a file) or INVALID_OPTION (as an option), never echoed', async () => {
    const file = join(dir, 'malformed');
    writeFileSync(file, 'eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln\n');
    const error = await issuer({ file })
      .issue(await makeRequest(names), context())
      .catch((e) => e);
    expect(error.code).toBe('TOKEN_MALFORMED');
    expect(error.message).not.toContain('bm90IGpzb24');
    expect(() => issuer('not-a-jwt-secret-value')).toThrowError(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.not.stringContaining('secret') }),
    );
  });

  it('no token anywhere is TOKEN_MISSING, naming where it looked', async () => {
    const request = await makeRequest(names);
    await expect(
      issuer({ env: 'CERTKEEPER_TEST_UNSET_TOKEN' }).issue(request, context()),
    ).rejects.toMatchObject({
      code: 'TOKEN_MISSING',
      message: expect.stringContaining('environment variable CERTKEEPER_TEST_UNSET_TOKEN'),
    });
    await expect(issuer({ file: join(dir, 'absent') }).issue(request, context())).rejects.toMatchObject({
      code: 'TOKEN_MISSING',
      message: expect.stringContaining(join(dir, 'absent')),
    });
    await expect(
      new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem }).issue(request, context()),
    ).rejects.toMatchObject({ code: 'TOKEN_MISSING' });
  });
});

describe('single use', () => {
  it('a spent token is never presented again: the store remembers the hash of its jti', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names });
    const store = new MemoryStore();
    await issuer(token).issue(await makeRequest(names), context(store));
    const before = signs();
    const again = await issuer(token)
      .issue(await makeRequest(names), context(store))
      .catch((e) => e);
    expect(again.code).toBe('TOKEN_ALREADY_USED');
    expect(again.message).toMatch(/already presented .*outcome enrolled.*single-use/);
    expect(signs()).toBe(before);
    const keys = await store.list('enrollment');
    expect(keys).toContain(`enrollment/127.0.0.1_${ca.port}/tokens/${tokenId(token, readToken(token))}.json`);
    for (const key of keys)
      expect(Buffer.from((await store.get(key))!).toString()).not.toContain(token.split('.')[1]);
  });

  it('a token the CA refused is not retried: the next attempt fails locally with the recorded outcome', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names });
    await issuer(token).issue(await makeRequest(names), context());
    const store = new MemoryStore();
    const first = await issuer(token)
      .issue(await makeRequest(names), context(store))
      .catch((e) => e);
    expect(first.code).toBe('TOKEN_REJECTED');
    const before = signs();
    const second = await issuer(token)
      .issue(await makeRequest(names), context(store))
      .catch((e) => e);
    expect(second.code).toBe('TOKEN_ALREADY_USED');
    expect(second.message).toMatch(/outcome TOKEN_REJECTED 401/);
    expect(signs()).toBe(before);
  });

  it('a CA that says "token already used" gets TOKEN_ALREADY_USED, recorded and not retried', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names });
    const store = new MemoryStore();
    ca.faults.set('/1.0/sign', 'verbose401');
    try {
      const error = await issuer(token)
        .issue(await makeRequest(names), context(store))
        .catch((e) => e);
      expect(error).toMatchObject({ code: 'TOKEN_ALREADY_USED', details: { status: 401 } });
    } finally {
      ca.faults.delete('/1.0/sign');
    }
    const before = signs();
    await expect(issuer(token).issue(await makeRequest(names), context(store))).rejects.toMatchObject({
      code: 'TOKEN_ALREADY_USED',
      message: expect.stringMatching(/outcome TOKEN_ALREADY_USED 401/),
    });
    expect(signs()).toBe(before);
  });

  it('a 5xx answer does not spend the token: the same token enrolls later', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names });
    const store = new MemoryStore();
    ca.faults.set('/1.0/sign', 'error500');
    try {
      await expect(issuer(token).issue(await makeRequest(names), context(store))).rejects.toMatchObject({
        code: 'ISSUER_UNAVAILABLE',
      });
    } finally {
      ca.faults.delete('/1.0/sign');
    }
    await expect(issuer(token).issue(await makeRequest(names), context(store))).resolves.toHaveProperty(
      'chainPem',
    );
  });
});

describe('token sources', () => {
  it('an environment variable is read at each attempt', async () => {
    const token = await mint(ca, { subject: 'api.test', sans: names });
    process.env.CERTKEEPER_TEST_TOKEN = `${token}\n`;
    try {
      await expect(
        issuer({ env: 'CERTKEEPER_TEST_TOKEN' }).issue(await makeRequest(names), context()),
      ).resolves.toHaveProperty('chainPem');
    } finally {
      delete process.env.CERTKEEPER_TEST_TOKEN;
    }
  });

  it('a file is re-read when it changes (a new secret), and watchToken says so', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, await mint(ca, { subject: 'api.test', sans: names }));
    const source = issuer({ file });
    const store = new MemoryStore();
    await source.issue(await makeRequest(names), context(store));
    await expect(source.issue(await makeRequest(names), context(store))).rejects.toMatchObject({
      code: 'TOKEN_ALREADY_USED',
    });
    const changed = new Promise<void>((resolve) => {
      const stop = source.watchToken(() => {
        stop();
        resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    writeFileSync(file, `${await mint(ca, { subject: 'api.test', sans: names })}\n`);
    await changed;
    await expect(source.issue(await makeRequest(names), context(store))).resolves.toHaveProperty('chainPem');
    await source.close();
  }, 10_000);
});
