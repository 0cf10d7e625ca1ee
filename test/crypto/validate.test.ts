import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../src/crypto/keys.js';
import { type BundleInput, validateBundle } from '../../src/crypto/validate.js';
import { makeIntermediate, makeLeaf, makePki, makeRoot } from '../support/pki.js';

type Pki = Awaited<ReturnType<typeof makePki>>;
let pki: Pki;

const codes = (input: BundleInput) => {
  const verdict = validateBundle(input);
  return verdict.ok ? [] : verdict.problems.map((p) => p.code);
};

beforeAll(async () => {
  // The leaf starts 10 minutes after its CAs, so validity tests around it isolate the leaf.
  pki = await makePki({
    names: ['a.test', '*.b.test', '192.0.2.1'],
    notBefore: new Date(Date.now() - 600_000),
  });
});

describe('validateBundle', () => {
  it('accepts a good bundle, and OpenSSL agrees the chain verifies', () => {
    const verdict = validateBundle({
      key: pki.keyPem,
      chain: pki.chainPem,
      names: ['a.test', 'x.b.test', '192.0.2.1'],
      trustAnchors: [pki.rootPem],
    });
    expect(verdict.ok).toBe(true);
    if (verdict.ok) expect(verdict.chain).toHaveLength(2);

    const dir = mkdtempSync(join(tmpdir(), 'ck-validate-'));
    writeFileSync(join(dir, 'root.pem'), pki.rootPem);
    writeFileSync(join(dir, 'int.pem'), pki.intermediate.certificate.pem);
    writeFileSync(join(dir, 'leaf.pem'), pki.leaf.certificate.pem);
    const out = execFileSync('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'int.pem'),
      '-purpose',
      'sslserver',
      join(dir, 'leaf.pem'),
    ]).toString();
    expect(out).toMatch(/: OK/);
  });

  it('accepts a chain that ends with the root itself, and a PrivateKey object', () => {
    expect(
      codes({
        key: pki.leaf.key,
        chain: pki.chainPem + pki.rootPem,
        trustAnchors: pki.rootPem,
        names: ['a.test'],
      }),
    ).toEqual([]);
  });

  it('KEY_MISMATCH: the key of another certificate', async () => {
    const other = await PrivateKey.generate();
    const verdict = validateBundle({ key: other, chain: pki.chainPem });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.error.code).toBe('KEY_MISMATCH');
      expect(verdict.error.details.keyFingerprint).toBe(other.publicKeyFingerprint());
    }
  });

  it('CHAIN_INVALID: a chain out of order says so', () => {
    const reversed = pki.intermediate.certificate.pem + pki.leaf.certificate.pem;
    const verdict = validateBundle({ key: pki.keyPem, chain: reversed });
    expect(verdict.ok).toBe(false);
    // The intermediate is now "the leaf", so the key also mismatches; both are reported.
    if (!verdict.ok) {
      expect(verdict.problems.map((p) => p.code)).toEqual(['KEY_MISMATCH', 'CHAIN_INVALID']);
    }
    const shuffled = pki.leaf.certificate.pem + pki.rootPem + pki.intermediate.certificate.pem;
    const v2 = validateBundle({ key: pki.keyPem, chain: shuffled });
    expect(!v2.ok && v2.error.message).toMatch(/out of order/);
  });

  it('CHAIN_INVALID: a leaf signed by another CA than the intermediate given', async () => {
    const otherRoot = await makeRoot('Other Root');
    const otherInt = await makeIntermediate(otherRoot, 'Other Intermediate');
    const leaf = await makeLeaf(otherInt, { names: ['a.test'] });
    expect(codes({ key: leaf.key, chain: leaf.certificate.pem + pki.intermediate.certificate.pem })).toEqual([
      'CHAIN_INVALID',
    ]);
  });

  it('CHAIN_INVALID: an issuer that is not a CA', async () => {
    const leafAsIssuer = { key: pki.leaf.key, certificate: pki.leaf.certificate };
    const child = await makeLeaf(leafAsIssuer, { names: ['c.test'] });
    expect(codes({ key: child.key, chain: child.certificate.pem + pki.leaf.certificate.pem })).toContain(
      'CHAIN_INVALID',
    );
  });

  it('UNTRUSTED_ROOT: a good chain from a CA that is not among the anchors', async () => {
    const otherRoot = await makeRoot('Other Root');
    const verdict = validateBundle({
      key: pki.keyPem,
      chain: pki.chainPem,
      trustAnchors: [otherRoot.certificate.pem],
    });
    expect(!verdict.ok && verdict.error.code).toBe('UNTRUSTED_ROOT');
    expect(codes({ key: pki.keyPem, chain: pki.chainPem + pki.rootPem, trustAnchors: [] })).toEqual([
      'UNTRUSTED_ROOT',
    ]);
  });

  it('UNTRUSTED_ROOT: a same-named impostor root', async () => {
    const impostor = await makeRoot('Test Root');
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, trustAnchors: impostor.certificate.pem })).toEqual([
      'UNTRUSTED_ROOT',
    ]);
  });

  it('NAME_NOT_COVERED: lists exactly the names not covered, with wildcard edge cases', () => {
    const verdict = validateBundle({
      key: pki.keyPem,
      chain: pki.chainPem,
      names: ['a.test', 'b.test', 'x.y.b.test', 'ok.b.test', '*.a.test', '192.0.2.2'],
    });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.error.code).toBe('NAME_NOT_COVERED');
      expect(verdict.error.details.uncovered).toEqual(['b.test', 'x.y.b.test', '*.a.test', '192.0.2.2']);
    }
  });

  it('EXPIRED and NOT_YET_VALID relative to `now`, with skew only forgiving notBefore', () => {
    const { notBefore, notAfter } = pki.leaf.certificate.info;
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, now: new Date(notAfter.getTime() + 1) })).toEqual([
      'EXPIRED',
    ]);
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, now: new Date(notAfter.getTime()) })).toEqual([
      'EXPIRED',
    ]);
    expect(
      codes({ key: pki.keyPem, chain: pki.chainPem, now: new Date(notBefore.getTime() - 30_000) }),
    ).toEqual([]);
    expect(
      codes({ key: pki.keyPem, chain: pki.chainPem, now: new Date(notBefore.getTime() - 30_000), skewMs: 0 }),
    ).toEqual(['NOT_YET_VALID']);
    expect(
      codes({ key: pki.keyPem, chain: pki.chainPem, now: new Date(notBefore.getTime() - 61_000) }),
    ).toEqual(['NOT_YET_VALID']);
  });

  it('EXPIRED: an expired intermediate is reported with its index', async () => {
    const root = await makeRoot();
    const int = await makeIntermediate(root);
    const leaf = await makeLeaf(int, { notAfter: new Date(Date.now() + 3 * 24 * 3_600_000) });
    const later = new Date(Date.now() + 2 * 24 * 3_600_000);
    const verdict = validateBundle({
      key: leaf.key,
      chain: leaf.certificate.pem + int.certificate.pem,
      now: later,
    });
    expect(!verdict.ok && verdict.error.details.index).toBe(1);
  });

  it('WRONG_PURPOSE: serverAuth-only for a client, and both required', async () => {
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, purpose: 'client' })).toEqual(['WRONG_PURPOSE']);
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, purpose: 'both' })).toEqual(['WRONG_PURPOSE']);
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, purpose: 'any' })).toEqual([]);
    const client = await makeLeaf(pki.intermediate, { extKeyUsage: ['clientAuth'] });
    expect(codes({ key: client.key, chain: client.certificate.pem, purpose: 'client' })).toEqual([]);
    expect(codes({ key: client.key, chain: client.certificate.pem })).toEqual(['WRONG_PURPOSE']);
  });

  it('MALFORMED_PEM: garbage chain, garbage key, two keys, garbage anchors', async () => {
    const two = pki.keyPem + (await PrivateKey.generate()).toPem();
    expect(codes({ key: pki.keyPem, chain: 'garbage' })).toEqual(['MALFORMED_PEM']);
    expect(codes({ key: 'garbage', chain: pki.chainPem })).toEqual(['MALFORMED_PEM']);
    expect(codes({ key: two, chain: pki.chainPem })).toEqual(['MALFORMED_PEM']);
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, trustAnchors: ['nope'] })).toEqual([
      'MALFORMED_PEM',
    ]);
    expect(codes({ key: pki.keyPem, chain: pki.chainPem + pki.keyPem })).toEqual(['MALFORMED_PEM']);
    const truncated = pki.chainPem.slice(0, pki.chainPem.length - 40);
    expect(codes({ key: pki.keyPem, chain: truncated })).toEqual(['MALFORMED_PEM']);
  });

  it('INVALID_NAME for a requested name that is not a name', () => {
    expect(codes({ key: pki.keyPem, chain: pki.chainPem, names: ['../etc/passwd'] })).toEqual([
      'INVALID_NAME',
    ]);
  });

  it('reports every problem at once, first one as `error`', async () => {
    const other = await PrivateKey.generate();
    const verdict = validateBundle({
      key: other,
      chain: pki.leaf.certificate.pem,
      names: ['nope.test'],
      purpose: 'client',
      trustAnchors: pki.rootPem,
      now: new Date(pki.leaf.certificate.info.notAfter.getTime() + 1000),
    });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.problems.map((p) => p.code)).toEqual([
        'KEY_MISMATCH',
        'UNTRUSTED_ROOT',
        'NAME_NOT_COVERED',
        'EXPIRED',
        'WRONG_PURPOSE',
      ]);
      expect(verdict.error).toBe(verdict.problems[0]);
    }
  });

  it.each(['ec-p384', 'rsa-2048', 'ed25519'] as const)('validates %s leaves', async (keyType) => {
    const leaf = await makeLeaf(pki.intermediate, { keyType, names: ['k.test'] });
    expect(
      codes({
        key: leaf.key,
        chain: leaf.certificate.pem + pki.intermediate.certificate.pem,
        trustAnchors: pki.rootPem,
      }),
    ).toEqual([]);
  });
});
