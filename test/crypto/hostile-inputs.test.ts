// Every exported toolkit function of src/crypto/, given hostile input: wrong types, empty, huge,
// IPv6 zone ids, garbage PEM and DER. The property: a call returns, or throws a CertkeeperError
// (async ones reject with one); never a TypeError, RangeError or a parser's own error. Some
// inputs are legitimate for some arguments (undefined for an optional one): those may return.
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCsr, inspectCsr, rdnValue, sanExtension } from '../../src/crypto/csr.js';
import {
  inspectCertificate,
  isSelfSigned,
  isSignedBy,
  type ParsedCertificate,
  parseCertificateDer,
  parseCertificates,
  serialDerHex,
} from '../../src/crypto/inspect.js';
import { isKeyType, keyTypeOf, PrivateKey, publicKeyMatches } from '../../src/crypto/keys.js';
import {
  canonicalIp,
  hostMatches,
  nameCovered,
  normalizeName,
  parseName,
  parseNames,
} from '../../src/crypto/names.js';
import { parseCertificatePems, parsePem, toPem } from '../../src/crypto/pem.js';
import { assertValidBundle, validateBundle } from '../../src/crypto/validate.js';
import { isCertkeeperError } from '../../src/errors.js';
import { makePki } from '../support/pki.js';

const ZONE_IDS = ['fe80::1%eth0', '::1%1', '[fe80::1%25eth0]', 'FE80::1%lo0'];
const GARBAGE_PEM = [
  '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
  `-----BEGIN CERTIFICATE-----\n${Buffer.from('garbage DER, definitely').toString('base64')}\n-----END CERTIFICATE-----\n`,
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n',
  '-----BEGIN CERTIFICATE-----\n',
];

/** Values that are wrong somewhere: every argument of every function gets each of them. */
const HOSTILE: [string, unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['NaN', Number.NaN],
  ['a boolean', true],
  ['a symbol', Symbol('hostile')],
  ['a bigint', 10n],
  ['a function', () => 'x'],
  ['an empty object', {}],
  ['an empty array', []],
  ['an array of numbers', [1, 2]],
  [
    'an object whose toString throws',
    {
      toString: () => {
        throw new Error('boom');
      },
    },
  ],
  ['an invalid Date', new Date(Number.NaN)],
  ['the empty string', ''],
  ['whitespace', ' \t\n'],
  ['a NUL byte', '\u0000'],
  ['a huge string', 'a'.repeat(4 << 20)],
  ['huge bytes', new Uint8Array(4 << 20)],
  ['empty bytes', new Uint8Array(0)],
  ['a DER-looking prefix', Uint8Array.from([0x30, 0x82, 0xff, 0xff, 0x01])],
  ...ZONE_IDS.map((z): [string, unknown] => [`zone id ${z}`, z]),
  ...GARBAGE_PEM.map((p, i): [string, unknown] => [`garbage PEM #${i}`, p]),
];

let pki: Awaited<ReturnType<typeof makePki>>;
let cert: ParsedCertificate;
beforeAll(async () => {
  pki = await makePki({ names: ['a.test'] });
  cert = pki.leaf.certificate;
});

/** Each exported function, with the hostile value in one argument and sane values elsewhere. */
// biome-ignore lint/suspicious/noExplicitAny: the point is calling typed functions with anything
const CALLS: [string, (x: any) => unknown][] = [
  ['canonicalIp(x)', (x) => canonicalIp(x)],
  ['parseName(x)', (x) => parseName(x)],
  ['parseNames(x)', (x) => parseNames(x)],
  ['parseNames([x])', (x) => parseNames([x])],
  ['normalizeName(x)', (x) => normalizeName(x)],
  ['nameCovered(x, sans)', (x) => nameCovered(x, [parseName('a.test')])],
  ['nameCovered(name, x)', (x) => nameCovered(parseName('a.test'), x)],
  ['nameCovered(name, [x])', (x) => nameCovered(parseName('a.test'), [x])],
  ['hostMatches(x, host)', (x) => hostMatches(x, 'a.test')],
  ['hostMatches(pattern, x)', (x) => hostMatches('*.test', x)],
  ['parsePem(x)', (x) => parsePem(x)],
  ['toPem(x, der)', (x) => toPem(x, Buffer.from('x'))],
  ['toPem(label, x)', (x) => toPem('CERTIFICATE', x)],
  ['parseCertificatePems(x)', (x) => parseCertificatePems(x)],
  ['isKeyType(x)', (x) => isKeyType(x)],
  ['keyTypeOf(x)', (x) => keyTypeOf(x)],
  ['PrivateKey.generate(x)', (x) => (x === undefined ? null : PrivateKey.generate(x))],
  ['PrivateKey.fromPem(x)', (x) => PrivateKey.fromPem(x)],
  ['PrivateKey.fromKeyObject(x)', (x) => PrivateKey.fromKeyObject(x)],
  ['publicKeyMatches(key, x)', (x) => publicKeyMatches(pki.leaf.key, x)],
  ['publicKeyMatches(x, publicKey)', (x) => publicKeyMatches(x, cert.node.publicKey)],
  ['serialDerHex(x)', (x) => serialDerHex(x)],
  ['parseCertificateDer(x)', (x) => parseCertificateDer(x)],
  ['parseCertificates(x)', (x) => parseCertificates(x)],
  ['inspectCertificate(x)', (x) => inspectCertificate(x)],
  ['isSignedBy(x, cert)', (x) => isSignedBy(x, cert)],
  ['isSignedBy(cert, x)', (x) => isSignedBy(cert, x)],
  ['isSelfSigned(x)', (x) => isSelfSigned(x)],
  ['rdnValue(x)', (x) => rdnValue(x)],
  ['sanExtension(x)', (x) => sanExtension(x)],
  ['sanExtension([x])', (x) => sanExtension([x])],
  ['createCsr(x)', (x) => createCsr(x)],
  ['createCsr({ key: x })', (x) => createCsr({ key: x, names: ['a.test'] })],
  ['createCsr({ names: x })', (x) => createCsr({ key: pki.leaf.key, names: x })],
  ['createCsr({ names: [x] })', (x) => createCsr({ key: pki.leaf.key, names: [x] })],
  ['createCsr({ commonName: x })', (x) => createCsr({ key: pki.leaf.key, names: ['a.test'], commonName: x })],
  ['inspectCsr(x)', (x) => inspectCsr(x)],
  ['validateBundle(x)', (x) => validateBundle(x)],
  ['validateBundle({ key: x })', (x) => validateBundle({ key: x, chain: pki.chainPem })],
  ['validateBundle({ chain: x })', (x) => validateBundle({ key: pki.keyPem, chain: x })],
  ['validateBundle({ names: x })', (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, names: x })],
  [
    'validateBundle({ names: [x] })',
    (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, names: [x] }),
  ],
  [
    'validateBundle({ purpose: x })',
    (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, purpose: x }),
  ],
  [
    'validateBundle({ trustAnchors: x })',
    (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, trustAnchors: x }),
  ],
  [
    'validateBundle({ trustAnchors: [x] })',
    (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, trustAnchors: [x] }),
  ],
  ['validateBundle({ now: x })', (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, now: x })],
  [
    'validateBundle({ skewMs: x })',
    (x) => validateBundle({ key: pki.keyPem, chain: pki.chainPem, skewMs: x }),
  ],
  ['assertValidBundle({ chain: x })', (x) => assertValidBundle({ key: pki.keyPem, chain: x })],
];

/** What a call did: returned, or threw (sync or async) which error. */
async function outcome(fn: () => unknown): Promise<{ threw: false } | { threw: true; error: unknown }> {
  try {
    await fn();
    return { threw: false };
  } catch (error) {
    return { threw: true, error };
  }
}

function untyped(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.slice(0, 120)}` : String(error);
}

describe('toolkit functions given hostile input throw CertkeeperErrors, always', () => {
  it.each(CALLS)('%s', async (_name, call) => {
    const failures: string[] = [];
    for (const [label, value] of HOSTILE) {
      const result = await outcome(() => call(value));
      if (result.threw && !isCertkeeperError(result.error))
        failures.push(`${label} → ${untyped(result.error)}`);
    }
    expect(failures).toEqual([]);
  });

  it('a verdict is never a bare throw for certificate material: every problem is typed', async () => {
    for (const [, value] of HOSTILE) {
      for (const input of [
        { key: value, chain: pki.chainPem },
        { key: pki.keyPem, chain: value },
        { key: pki.keyPem, chain: pki.chainPem, trustAnchors: [value] },
        { key: pki.keyPem, chain: pki.chainPem, names: [value] },
      ]) {
        const verdict = validateBundle(input as never);
        if (!verdict.ok) expect(verdict.problems.every((p) => isCertkeeperError(p))).toBe(true);
      }
    }
  });
});

describe('IPv6 zone ids', () => {
  it.each(ZONE_IDS)('%s is INVALID_NAME for parseName, normalizeName, parseNames and canonicalIp', (zone) => {
    for (const fn of [parseName, normalizeName, canonicalIp, (z: string) => parseNames([z])]) {
      expect(() => fn(zone)).toThrowError(
        expect.objectContaining({ code: 'INVALID_NAME', message: expect.stringMatching(/zone id/) }),
      );
    }
    expect(hostMatches('fe80::1', zone)).toBe(false);
  });

  it('the address without its zone is still an address', () => {
    expect(parseName('fe80::1')).toEqual({ type: 'ip', value: 'fe80::1', wildcard: false });
  });
});

describe('typed codes for the common mistakes', () => {
  it('names: INVALID_NAME; PEM and DER: MALFORMED_PEM; keys: UNSUPPORTED_KEY; options: INVALID_OPTION', async () => {
    expect(() => parseName(42 as never)).toThrowError(expect.objectContaining({ code: 'INVALID_NAME' }));
    expect(() => parseNames('a.test' as never)).toThrowError(
      expect.objectContaining({ code: 'INVALID_NAME' }),
    );
    expect(() => parsePem(42 as never)).toThrowError(expect.objectContaining({ code: 'MALFORMED_PEM' }));
    expect(() => inspectCertificate(Uint8Array.from([0x30, 1, 2]))).toThrowError(
      expect.objectContaining({ code: 'MALFORMED_PEM' }),
    );
    expect(() => PrivateKey.fromKeyObject({} as never)).toThrowError(
      expect.objectContaining({ code: 'UNSUPPORTED_KEY' }),
    );
    expect(() => keyTypeOf(null as never)).toThrowError(expect.objectContaining({ code: 'UNSUPPORTED_KEY' }));
    const publicOnly = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => PrivateKey.fromKeyObject(publicOnly)).toThrowError(
      expect.objectContaining({ code: 'UNSUPPORTED_KEY' }),
    );
    await expect(createCsr({ key: 'pem?' as never, names: ['a.test'] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'key' },
    });
    expect(() =>
      validateBundle({ key: pki.keyPem, chain: pki.chainPem, purpose: 'servr' as never }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'purpose' } }));
    expect(() => toPem('CERTIFICATE-----\n-----BEGIN PRIVATE KEY', Buffer.from('x'))).toThrowError(
      expect.objectContaining({ code: 'MALFORMED_PEM' }),
    );
  });

  it('a chain longer than any real one is refused before its signatures are checked', () => {
    const verdict = validateBundle({ key: pki.keyPem, chain: pki.chainPem.repeat(20) });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.problems).toHaveLength(1);
      expect(verdict.error).toMatchObject({ code: 'CHAIN_INVALID', details: { length: 40 } });
    }
  });
});
