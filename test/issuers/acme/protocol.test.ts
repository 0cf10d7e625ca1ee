// Protocol pieces that need no CA: problem documents → typed errors, Retry-After, the ARI certID.
import { describe, expect, it } from 'vitest';
import { Http01Solver } from '../../../src/challenges/http-01.js';
import { createCertificate } from '../../../src/crypto/certificate-builder.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { x509 } from '../../../src/crypto/x509.js';
import { isRetryable } from '../../../src/errors.js';
import { AcmeIssuer } from '../../../src/issuers/acme/acme-issuer.js';
import { certId } from '../../../src/issuers/acme/ari.js';
import { challengeRetryable, problemError } from '../../../src/issuers/acme/problems.js';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../../../src/issuers/acme/transport.js';
import { makeIntermediate, makeRoot } from '../../support/pki.js';

const response = (status: number, data: unknown, headers: Record<string, string> = {}) => ({
  status,
  headers,
  data,
});

describe('ACME problems', () => {
  it('429 and rateLimited become RATE_LIMITED with the CA’s Retry-After', () => {
    const error = problemError(
      response(
        429,
        { type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many certificates' },
        { 'retry-after': '120' },
      ),
      'POST /new-order',
    );
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.details).toMatchObject({
      type: 'urn:ietf:params:acme:error:rateLimited',
      status: 429,
      retryAfterMs: 120_000,
    });
    expect(error.message).toMatch(/rateLimited \(429\): too many certificates/);
  });

  it('5xx becomes ISSUER_UNAVAILABLE, other problems ACME_PROBLEM with subproblems', () => {
    expect(problemError(response(503, 'maintenance', { 'retry-after': '30' }), 'x').code).toBe(
      'ISSUER_UNAVAILABLE',
    );
    const rejected = problemError(
      response(400, {
        type: 'urn:ietf:params:acme:error:rejectedIdentifier',
        detail: 'policy',
        subproblems: [
          {
            type: 'urn:ietf:params:acme:error:rejectedIdentifier',
            identifier: { type: 'dns', value: 'x.test' },
          },
        ],
      }),
      'x',
    );
    expect(rejected.code).toBe('ACME_PROBLEM');
    expect(rejected.details.subproblems).toHaveLength(1);
  });

  it('userActionRequired names the page to act on and the new terms of service, and is final', () => {
    const error = problemError(
      response(
        403,
        {
          type: 'urn:ietf:params:acme:error:userActionRequired',
          detail: 'Terms of service have changed',
          instance: 'https://ca.test/docs/agreement-2026',
        },
        {
          link: '<https://ca.test/dir>;rel="index", <https://ca.test/terms-2026.pdf>;rel="terms-of-service"',
        },
      ),
      'POST https://ca.test/new-order',
    );
    expect(error.details).toMatchObject({
      instance: 'https://ca.test/docs/agreement-2026',
      termsOfService: 'https://ca.test/terms-2026.pdf',
      retryable: false,
    });
    expect(error.message).toMatch(
      /see https:\/\/ca\.test\/docs\/agreement-2026, https:\/\/ca\.test\/terms-2026\.pdf/,
    );
  });

  it('caps a hostile detail', () => {
    const error = problemError(response(400, { type: 'about:blank', detail: 'x'.repeat(10_000) }), 'x');
    expect(error.message.length).toBeLessThan(700);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('what the CA says about time is bounded', () => {
  it('a Retry-After of ten years, of more digits than a number holds, or a date in 2100 is capped', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    for (const value of [
      '315360000',
      '1'.repeat(400),
      '100000000000000000000',
      'Fri, 01 Jan 2100 00:00:00 GMT',
    ]) {
      const ms = parseRetryAfter(value, now)!;
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBe(MAX_RETRY_AFTER_MS);
      expect(() => new Date(now + ms).toISOString()).not.toThrow();
    }
    expect(MAX_RETRY_AFTER_MS).toBeLessThanOrEqual(7 * 24 * 3_600_000);
    expect(parseRetryAfter('120', now)).toBe(120_000);
  });

  it('a problem document carries the capped Retry-After', () => {
    const error = problemError(
      response(429, { type: 'urn:ietf:params:acme:error:rateLimited' }, { 'retry-after': '315360000' }),
      'x',
    );
    expect(error.details.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
  });
});

describe('ACME problems retrying cannot fix', () => {
  const urn = (name: string) => `urn:ietf:params:acme:error:${name}`;
  it.each([
    'rejectedIdentifier',
    'unsupportedIdentifier',
    'caa',
    'unauthorized',
    'badCSR',
    'badPublicKey',
    'badSignatureAlgorithm',
    'invalidContact',
    'unsupportedContact',
    'externalAccountRequired',
    'userActionRequired',
    'badRevocationReason',
    'alreadyRevoked',
    'invalidProfile',
  ])('%s: retryable false', (name) => {
    const error = problemError(response(403, { type: urn(name), detail: 'no' }), 'x');
    expect(error.code).toBe('ACME_PROBLEM');
    expect(error.details.retryable).toBe(false);
    expect(isRetryable(error)).toBe(false);
  });

  it.each([
    [429, 'rateLimited'],
    [503, 'serverInternal'],
    [400, 'malformed'],
    [400, 'orderNotReady'],
    [400, 'badNonce'],
    [400, 'connection'],
    [400, 'dns'],
    [400, 'incorrectResponse'],
    [400, 'accountDoesNotExist'],
  ])('%i %s: retryable', (status, name) => {
    const error = problemError(response(status, { type: urn(name), detail: 'x' }), 'x');
    expect(isRetryable(error)).toBe(true);
  });

  it('a failed challenge is retryable (another answer, another solver) unless the CA refused the name', () => {
    expect(challengeRetryable(urn('caa'))).toBe(false);
    expect(challengeRetryable(urn('rejectedIdentifier'))).toBe(false);
    for (const name of ['incorrectResponse', 'unauthorized', 'connection', 'dns', 'tls'])
      expect(challengeRetryable(urn(name))).toBe(true);
    expect(challengeRetryable(undefined)).toBe(true);
  });

  it('compound: retryable false only when every subproblem is', () => {
    const compound = (types: string[]) =>
      problemError(
        response(400, {
          type: urn('compound'),
          subproblems: types.map((t) => ({ type: urn(t), identifier: { type: 'dns', value: 'x.test' } })),
        }),
        'x',
      );
    expect(isRetryable(compound(['rejectedIdentifier', 'caa']))).toBe(false);
    expect(isRetryable(compound(['rejectedIdentifier', 'dns']))).toBe(true);
    expect(isRetryable(compound([]))).toBe(true);
  });
});

describe('ARI certID (RFC 9773 §4.1)', () => {
  it('matches the RFC example', () => {
    // RFC 9773 §4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
    expect(
      certId({ authorityKeyId: '69885b6b87464041e1b37b847ba0ae2cde01c8d4', serialNumber: '0087654321' }),
    ).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  it('is computed from the AKI and the serial DER bytes of a real certificate', async () => {
    const root = await makeRoot();
    const int = await makeIntermediate(root);
    const key = await PrivateKey.generate();
    const leaf = await createCertificate({
      publicKey: key,
      issuer: int,
      names: ['a.test'],
      serialNumber: '00f00d',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 60_000),
    });
    const peculiar = new x509.X509Certificate(leaf.der);
    const aki = peculiar.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId!;
    expect(certId(leaf.info)).toBe(
      `${Buffer.from(aki, 'hex').toString('base64url')}.${Buffer.from([0x00, 0xf0, 0x0d]).toString('base64url')}`,
    );
    expect(certId({ authorityKeyId: null, serialNumber: '01' })).toBeNull();
  });
});

describe('AcmeIssuer options', () => {
  it.each([
    [{}, /directoryUrl is required/],
    [{ directoryUrl: 'not a url', challenges: [new Http01Solver()] }, /directoryUrl must be a URL/],
    [{ directoryUrl: 'ftp://x/dir', challenges: [new Http01Solver()] }, /directoryUrl must be http/],
    [
      { directoryUrl: 'http://x/dir', challenges: [new Http01Solver()] },
      /directoryUrl must be https.*allowHttp/,
    ],
    [
      { directoryUrl: 'http://x/dir', challenges: [new Http01Solver()], allowHttp: 'yes' },
      /allowHttp must be a boolean/,
    ],
    [{ directoryUrl: 'https://x/dir', challenges: [] }, /challenges must list at least one/],
    [
      { directoryUrl: 'https://x/dir', challenges: [new Http01Solver(), new Http01Solver()] },
      /must not repeat/,
    ],
    [
      { directoryUrl: 'https://x/dir', challenges: [new Http01Solver()], contact: ['me@x.test'] },
      /contact entries must be mailto/,
    ],
    [
      { directoryUrl: 'https://x/dir', challenges: [new Http01Solver()], accountKeyType: 'ed25519' },
      /accountKeyType/,
    ],
    [{ directoryUrl: 'https://x/dir', challenges: [new Http01Solver()] }, /agreeToTerms is required/],
    [
      { directoryUrl: 'https://x/dir', challenges: [new Http01Solver()], agreeToTerms: 'yes' },
      /agreeToTerms is required/,
    ],
    [
      { directoryUrl: 'https://x/dir', challenges: [new Http01Solver()], agreeToTerms: true, profile: '' },
      /profile must be a non-empty string/,
    ],
    [
      {
        directoryUrl: 'https://x/dir',
        challenges: [new Http01Solver()],
        agreeToTerms: true,
        polling: { intervalMs: 0 },
      },
      /polling.intervalMs must be a positive number/,
    ],
  ])('%#: refuses %j', (options, message) => {
    expect(() => new AcmeIssuer(options as never)).toThrowError(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(message) }),
    );
  });

  it('an http: directory only with allowHttp: true (a CA on loopback in development)', () => {
    const base = {
      directoryUrl: 'http://127.0.0.1:14000/dir',
      agreeToTerms: true,
      challenges: [new Http01Solver()],
    };
    expect(new AcmeIssuer({ ...base, allowHttp: true }).id).toBe(base.directoryUrl);
    const error = (() => {
      try {
        return new AcmeIssuer(base);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'directoryUrl' } });
  });

  it('issues server certificates only, unless the CA is known to issue clientAuth', () => {
    const base = { directoryUrl: 'https://x/dir', agreeToTerms: true, challenges: [new Http01Solver()] };
    expect(new AcmeIssuer(base).supportsPurpose('client')).toBe(false);
    expect(new AcmeIssuer({ ...base, clientAuth: true }).supportsPurpose('client')).toBe(true);
  });
});
