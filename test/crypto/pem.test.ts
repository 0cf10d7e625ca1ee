import { describe, expect, it } from 'vitest';
import { parseCertificatePems, parsePem, toPem } from '../../src/crypto/pem.js';

const body = Buffer.from('hello certkeeper, this is not DER but it is bytes');

describe('parsePem', () => {
  it('round-trips a block and keeps explanatory text outside blocks', () => {
    const text = `subject=CN = x\n${toPem('CERTIFICATE', body)}trailing words\n`;
    const blocks = parsePem(text);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.label).toBe('CERTIFICATE');
    expect(blocks[0]!.der.equals(body)).toBe(true);
  });

  it('accepts CRLF line endings', () => {
    expect(parsePem(toPem('CERTIFICATE', body).replace(/\n/g, '\r\n'))[0]!.der.equals(body)).toBe(true);
  });

  it.each([
    ['mismatched END label', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n'],
    ['missing END line', '-----BEGIN CERTIFICATE-----\nAAAA\n'],
    ['non-base64 characters', '-----BEGIN CERTIFICATE-----\nAA$A\n-----END CERTIFICATE-----\n'],
    ['padding in the middle', '-----BEGIN CERTIFICATE-----\nAA==AAAA\n-----END CERTIFICATE-----\n'],
    ['impossible base64 length', '-----BEGIN CERTIFICATE-----\nAAAAA\n-----END CERTIFICATE-----\n'],
    ['an empty block', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'],
    ['a stray END line', 'junk\n-----END CERTIFICATE-----\n'],
    [
      'legacy encrypted headers',
      '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n',
    ],
  ])('rejects %s with MALFORMED_PEM', (_name, text) => {
    expect(() => parsePem(text)).toThrowError(expect.objectContaining({ code: 'MALFORMED_PEM' }));
  });

  it('finds nothing in garbage without boundaries (callers decide whether that is an error)', () => {
    expect(parsePem('just some garbage')).toEqual([]);
    expect(parsePem(Buffer.from([0xff, 0x00, 0x13]))).toEqual([]);
  });
});

describe('parseCertificatePems', () => {
  it('rejects input without any block', () => {
    expect(() => parseCertificatePems('garbage')).toThrowError(/no PEM block/);
  });

  it('rejects other block types mixed into a chain, naming the label', () => {
    const text = toPem('CERTIFICATE', body) + toPem('PRIVATE KEY', body);
    expect(() => parseCertificatePems(text)).toThrowError(/found PRIVATE KEY/);
  });
});
