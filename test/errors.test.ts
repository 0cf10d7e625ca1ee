import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PrivateKey } from '../src/crypto/keys.js';
import { validateBundle } from '../src/crypto/validate.js';
import {
  CertkeeperError,
  describeCause,
  type ErrorCode,
  isCertkeeperError,
  isRetryable,
  scrubSecrets,
} from '../src/errors.js';
import type { Issuer } from '../src/issuers/issuer.js';
import { silentLogger } from '../src/logger.js';
import { createCertificateManager } from '../src/manager/manager.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { nextEvent } from './support/events.js';
import { makePki } from './support/pki.js';

describe('CertkeeperError', () => {
  it('carries a stable code, frozen details and a JSON form', () => {
    const err = new CertkeeperError('EXPIRED', 'gone', { details: { serial: '01' } });
    expect(err.code).toBe('EXPIRED');
    expect(err.name).toBe('CertkeeperError');
    expect(Object.isFrozen(err.details)).toBe(true);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      name: 'CertkeeperError',
      code: 'EXPIRED',
      message: 'gone',
      details: { serial: '01' },
    });
    expect(isCertkeeperError(err, 'EXPIRED')).toBe(true);
    expect(isCertkeeperError(err, 'KEY_MISMATCH')).toBe(false);
    expect(isCertkeeperError(new Error('x'))).toBe(false);
  });

  it('instanceof holds for errors from a duplicate install (brand, not prototype)', () => {
    const foreign = Object.create(Error.prototype);
    Object.defineProperty(foreign, Symbol.for('certkeeper.error'), { value: true });
    expect(foreign instanceof CertkeeperError).toBe(true);
  });

  it('scrubs private key blocks and long base64 from messages, keeps hex fingerprints', async () => {
    const key = await PrivateKey.generate();
    const pem = key.toPem();
    const err = new CertkeeperError('MALFORMED_PEM', `bad input: ${pem}`);
    expect(err.message).not.toContain(pem.split('\n')[1]!.slice(0, 24));
    expect(err.message).toContain('[private key redacted]');
    const fp = key.publicKeyFingerprint();
    expect(scrubSecrets(`key ${fp}`)).toBe(`key ${fp}`);
    expect(scrubSecrets(`d=${randomBytes(32).toString('base64url')}x9Z`)).toBe('d=[redacted]');
    const path = 'certificates/internal-ca/localhost/2b51048a3632752aad057edc0df959a4/cert.pem';
    expect(scrubSecrets(`at ${path}`)).toBe(`at ${path}`);
    expect(scrubSecrets(`der=${'ab'.repeat(40)}`)).toBe('der=[redacted]');
  });
});

describe('no private key bytes in any toolkit error', () => {
  it('every failing validation keeps the key out of message, details, JSON and inspect output', async () => {
    const pki = await makePki({ names: ['a.test'] });
    const victim = await PrivateKey.generate();
    const pem = victim.toPem();
    const der = victim.keyObject.export({ type: 'pkcs8', format: 'der' });
    // Fragments an attacker-visible log must never contain.
    const fragments = [
      pem.split('\n')[1]!.slice(0, 20),
      der.toString('hex').slice(0, 32),
      der.toString('base64').slice(8, 28),
    ];
    const inputs = [
      { key: victim, chain: pki.chainPem },
      { key: pem, chain: pem },
      { key: pem + pem, chain: pki.chainPem },
      { key: pem.replace('PRIVATE KEY-----\n', 'PRIVATE KEY-----\n!'), chain: pki.chainPem },
      { key: pem, chain: pki.chainPem, names: [pem] },
      { key: pem, chain: pki.chainPem, trustAnchors: pem },
      { key: pem, chain: `${pki.chainPem}${pem}`, purpose: 'client' as const },
    ];
    for (const input of inputs) {
      const verdict = validateBundle(input);
      expect(verdict.ok).toBe(false);
      if (verdict.ok) continue;
      for (const problem of verdict.problems) {
        const surfaces = [
          problem.message,
          JSON.stringify(problem),
          inspect(problem, { depth: 5 }),
          String(problem.stack),
        ];
        for (const surface of surfaces) for (const f of fragments) expect(surface).not.toContain(f);
      }
    }
  });
});

describe('causes from other libraries', () => {
  it('keep name, code and a scrubbed message, never the objects they carried', () => {
    const foreign = Object.assign(new Error('request failed with status 401'), {
      code: 'ERR_BAD_REQUEST',
      config: { headers: { Authorization: 'Bearer dns-api-token-0123456789abcdef' } },
    });
    const wrapped = new CertkeeperError('ISSUER_FAILED', 'DNS provider failed', { cause: foreign });
    const cause = wrapped.cause as Error & { code?: string };
    expect(cause.message).toContain('request failed with status 401');
    expect(cause.code).toBe('ERR_BAD_REQUEST');
    expect(inspect(wrapped, { depth: 5 })).not.toContain('dns-api-token');
    // Our own errors stay as they are.
    const inner = new CertkeeperError('STORE_IO', 'store down');
    expect(new CertkeeperError('ISSUER_FAILED', 'x', { cause: inner }).cause).toBe(inner);
  });
});

describe('scrubbing the forms key bytes take in foreign errors', () => {
  it('an inspected Buffer, typed array or ArrayBuffer of a key is redacted whatever its length', async () => {
    const der = (await PrivateKey.generate()).keyObject.export({ type: 'pkcs8', format: 'der' });
    const bytes = new Uint8Array(der);
    const forms = [
      inspect(der),
      inspect(der.subarray(0, 20)),
      inspect(bytes),
      inspect(bytes.buffer),
      JSON.stringify(der),
      // A message cut short (a capped CA detail) loses the closing bracket.
      inspect(der).slice(0, 60),
    ];
    for (const form of forms) {
      const foreign = new Error(`unexpected key material ${form} in answer`);
      const wrapped = new CertkeeperError('ISSUER_FAILED', describeCause(foreign), { cause: foreign });
      for (const text of [wrapped.message, inspect(wrapped, { depth: 5 }), JSON.stringify(wrapped)]) {
        expect(text).not.toMatch(/30 81 87|30 81 8[0-9a-f] 02 01 00|48, ?129, ?135/);
        expect(text).not.toContain(der.subarray(4, 16).toString('hex').match(/../g)!.join(' '));
      }
      expect(wrapped.message).toMatch(/\[redacted/);
    }
  });

  it('hex with separators longer than a fingerprint is redacted; fingerprints and serials stay', () => {
    const secret = randomBytes(48).toString('hex');
    expect(scrubSecrets(`k=${secret.match(/../g)!.join(':')}`)).toBe('k=[redacted]');
    expect(scrubSecrets(`k=${secret.match(/../g)!.join(' ')}`)).toBe('k=[redacted]');
    const fp = randomBytes(32).toString('hex').toUpperCase().match(/../g)!.join(':');
    expect(scrubSecrets(`root ${fp}`)).toBe(`root ${fp}`);
    expect(scrubSecrets('serial 01:02:03:04:05')).toBe('serial 01:02:03:04:05');
  });

  it('private JWK members and HMAC keys are redacted in JSON and inspect form, however short', () => {
    const jwk = { kty: 'EC', crv: 'P-256', x: 'abc', y: 'def', d: 'q2Wk_short-d' };
    for (const text of [JSON.stringify(jwk), inspect(jwk), JSON.stringify({ hmacKey: 'c2VjcmV0' })]) {
      const scrubbed = scrubSecrets(`bad key ${text}`);
      expect(scrubbed).not.toContain('q2Wk_short-d');
      expect(scrubbed).not.toContain('c2VjcmV0');
      expect(scrubbed).toContain('[redacted]');
    }
    expect(scrubSecrets('{"kty":"EC","x":"abc"}')).toBe('{"kty":"EC","x":"abc"}');
  });

  it('keeps the origin of a URL (its port is no secret) and still scrubs secrets in path and query', () => {
    const id = 'Xk3d9aQ_pLm2ZzYtR8wVb1NcH7eF0gJ4sUoIqK5yDrE';
    // The path after the origin is judged as one run, as before: a secret split by '/' stays whole.
    expect(scrubSecrets(`GET https://127.0.0.1:34567/authz/${id} failed`)).toBe(
      'GET https://127.0.0.1:34567[redacted] failed',
    );
    expect(scrubSecrets('ACME server unreachable (https://127.0.0.1:34567/dir)')).toBe(
      'ACME server unreachable (https://127.0.0.1:34567/dir)',
    );
    expect(scrubSecrets(`https://[::1]:8443/x?token=${id}`)).toBe('https://[::1]:8443/x?token=[redacted]');
    expect(scrubSecrets(`https://acme.example.com:14000/${id}${id}`)).toBe(
      'https://acme.example.com:14000[redacted]',
    );
    expect(scrubSecrets('POST https://acme-v02.example.org/acme/order/12345/67890: x')).toBe(
      'POST https://acme-v02.example.org/acme/order/12345/67890: x',
    );
    // Key text glued to a scheme is no host: it is scrubbed like any other run.
    const b64 = randomBytes(60).toString('base64').replace(/[+/]/g, 'A');
    expect(scrubSecrets(`https://${b64}`)).not.toContain(b64.slice(0, 12));
  });
});

describe('paths and store keys are no secrets; key material in any encoding is', () => {
  // Runs of base64-alphabet characters that are file paths or store keys, as errors print them.
  const kept = [
    "EACCES: permission denied, lstat '/tmp/certkeeper-race-YFEHkR/store/challenges'",
    "ENOENT: no such file or directory, lstat '/tmp/certkeeper-race-Y3FHk9/store/challenges/http-01'",
    'writing store key "accounts/Pebble_14000-dir/acct-0123456789abcdef/key" failed',
    'writing store key "cluster/members/Build-Server-01-48213-9f3a01bc" failed',
    'reading store key "challenges/tls-alpn-01-acks/api/Web01-4821-9f3a01bc" failed',
    "open '/home/Alice/Projects2024/certkeeper/store/certificates/internal'",
    'store key certificates/internal/@api/2b51048a3632752aad057edc0df959a4/cert',
    "mkdir '/var/lib/certkeeper/ca/ProdCA2/Intermediate2/next'",
  ];
  it.each(kept)('keeps %s', (text) => {
    expect(scrubSecrets(text)).toBe(text);
  });

  it('redacts key material as base64 (with and without padding or "+"), base64url and hex', async () => {
    // Deterministic "random" bytes, so the table is the same on every run.
    const bytesOf = (i: number, n: number) =>
      Buffer.concat([0, 1].map((j) => createHash('sha512').update(`secret-${i}-${j}`).digest())).subarray(
        0,
        n,
      );
    const secrets: string[] = [];
    for (let i = 0; i < 300; i++) {
      const bytes = bytesOf(i, 30 + (i % 35));
      secrets.push(
        bytes.toString('base64'),
        bytes.toString('base64').replace(/=+$/, ''),
        bytes.toString('base64url'),
        // standard base64 with no "+" and no padding: only '/' splits it, as in a path
        bytes.toString('base64').replaceAll('+', '/').replace(/=+$/, ''),
      );
      if (bytes.length > 32) secrets.push(bytes.toString('hex'));
    }
    for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
      const der = (await PrivateKey.generate(type)).keyObject.export({ type: 'pkcs8', format: 'der' });
      secrets.push(der.toString('base64'), der.toString('base64url'), der.toString('hex'));
    }
    for (const secret of secrets) {
      for (const text of [
        `key ${secret} rejected`,
        `lstat '/tmp/x/${secret}'`,
        `store key "a/${secret}/b"`,
      ]) {
        const scrubbed = scrubSecrets(text);
        expect(scrubbed, text).toContain('[redacted]');
        expect(scrubbed, text).not.toContain(secret.slice(0, 12));
        expect(scrubbed, text).not.toContain(secret.slice(-12));
      }
    }
  });
});

describe('isRetryable: whether retrying with the same inputs can help', () => {
  const notRetryable: ErrorCode[] = [
    'INVALID_OPTION',
    'INVALID_NAME',
    'UNSUPPORTED_KEY',
    'NOT_SUPPORTED',
    'TOKEN_MISSING',
    'TOKEN_MALFORMED',
    'TOKEN_EXPIRED',
    'TOKEN_AUDIENCE_MISMATCH',
    'TOKEN_ROOT_MISMATCH',
    'TOKEN_NAMES_MISMATCH',
    'TOKEN_ALREADY_USED',
    'TOKEN_REJECTED',
    'NEW_TOKEN_REQUIRED',
    'PROVISIONER_KEY_INVALID',
    'ROOT_FINGERPRINT_MISMATCH',
  ];
  const retryable: ErrorCode[] = [
    'ISSUER_UNAVAILABLE',
    'ISSUER_FAILED',
    'RATE_LIMITED',
    'CHALLENGE_FAILED',
    'ORDER_INVALID',
    'ACME_PROBLEM',
    'CA_REFUSED',
    'TOKEN_NOT_YET_VALID',
    'STORE_IO',
    'STORE_CLOSED',
    'LOCK_LOST',
    'LIVE_VERIFY_FAILED',
    'DEPLOY_FAILED',
    'UNTRUSTED_ROOT',
    'CHAIN_INVALID',
  ];

  it.each(notRetryable)('%s is not retryable by default', (code) => {
    expect(isRetryable(new CertkeeperError(code, 'x'))).toBe(false);
    expect(isRetryable(new CertkeeperError(code, 'x', { details: { retryable: true } }))).toBe(true);
  });

  it.each(retryable)('%s is retryable by default', (code) => {
    expect(isRetryable(new CertkeeperError(code, 'x'))).toBe(true);
    expect(isRetryable(new CertkeeperError(code, 'x', { details: { retryable: false } }))).toBe(false);
  });

  it('anything that is not a CertkeeperError is retryable; a non-boolean retryable is ignored', () => {
    expect(isRetryable(new Error('x'))).toBe(true);
    expect(isRetryable('x')).toBe(true);
    expect(
      isRetryable(new CertkeeperError('TOKEN_ALREADY_USED', 'x', { details: { retryable: 'no' } })),
    ).toBe(false);
  });
});

describe('the retry contract, as the manager reads it', () => {
  it('an issuer throwing a code retrying cannot fix, without details.retryable, waits retryMaxMs', async () => {
    for (const [code, details, longest] of [
      ['TOKEN_ALREADY_USED', {}, true],
      ['NEW_TOKEN_REQUIRED', {}, true],
      ['ACME_PROBLEM', { retryable: false }, true],
      ['ISSUER_UNAVAILABLE', {}, false],
    ] as const) {
      const issuer: Issuer = {
        id: 'third-party',
        issue: async () => {
          throw new CertkeeperError(code, 'no', { details });
        },
      };
      const manager = createCertificateManager({
        store: new MemoryStore(),
        issuer,
        logger: silentLogger,
        certificates: [{ id: 'a', names: ['a.test'] }],
        renewal: { retryMinMs: 1_000, retryMaxMs: 3_600_000 },
      });
      try {
        const failed = nextEvent(manager, 'renewalFailed');
        await manager.start();
        const { error, retryAt } = await failed;
        expect(error.code).toBe(code);
        const wait = retryAt.getTime() - Date.now();
        if (longest) expect(wait).toBeGreaterThan(3_000_000);
        else expect(wait).toBeLessThan(60_000);
      } finally {
        await manager.stop();
      }
    }
  });
});
