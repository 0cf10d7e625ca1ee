import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PrivateKey } from '../src/crypto/keys.js';
import { validateBundle } from '../src/crypto/validate.js';
import { CertkeeperError, isCertkeeperError, scrubSecrets } from '../src/errors.js';
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
