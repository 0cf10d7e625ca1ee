import { describe, expect, it } from 'vitest';
import { canonicalIp, hostMatches, nameCovered, parseName, parseNames } from '../../src/crypto/names.js';

const covered = (name: string, sans: string[]) => nameCovered(parseName(name), sans.map(parseName));

describe('parseName', () => {
  it('normalises case, trailing dot, IDNs and IP forms', () => {
    expect(parseName(' WWW.Example.COM. ')).toEqual({
      type: 'dns',
      value: 'www.example.com',
      wildcard: false,
    });
    expect(parseName('bücher.example').value).toBe('xn--bcher-kva.example');
    expect(parseName('*.Example.com')).toEqual({ type: 'dns', value: '*.example.com', wildcard: true });
    expect(parseName('::0001')).toEqual({ type: 'ip', value: '::1', wildcard: false });
    expect(parseName('[2001:DB8:0:0:0:0:0:1]').value).toBe('2001:db8::1');
    expect(parseName('127.0.0.1').type).toBe('ip');
  });

  it.each([
    ['', 'empty'],
    ['a..b', 'empty label'],
    ['-a.test', 'leading hyphen'],
    ['a-.test', 'trailing hyphen'],
    ['a b.test', 'space'],
    ['a\u0000b.test', 'NUL'],
    ['x.*.a.com', 'wildcard not left-most'],
    ['f*.a.com', 'partial-label wildcard'],
    ['*.com', 'wildcard over a single label'],
    ['*', 'bare wildcard'],
    [`${'a'.repeat(64)}.test`, 'label over 63'],
    [`${'abcdefghi.'.repeat(26)}test`, 'name over 253'],
  ])('rejects %j (%s) with INVALID_NAME', (name) => {
    expect(() => parseName(name)).toThrowError(expect.objectContaining({ code: 'INVALID_NAME' }));
  });

  it('de-duplicates equivalent names, keeping the first order', () => {
    expect(parseNames(['B.test', 'a.test', 'b.test.', '::1', '0:0::1']).map((n) => n.value)).toEqual([
      'b.test',
      'a.test',
      '::1',
    ]);
  });

  it('canonicalIp returns null for names', () => {
    expect(canonicalIp('example.com')).toBeNull();
    expect(canonicalIp('10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('nameCovered (RFC 6125 wildcards)', () => {
  it('matches exact names case-insensitively', () => {
    expect(covered('A.com', ['a.com'])).toBe(true);
  });

  it('a wildcard covers exactly one left-most label', () => {
    expect(covered('x.a.com', ['*.a.com'])).toBe(true);
    expect(covered('a.com', ['*.a.com'])).toBe(false);
    expect(covered('x.y.a.com', ['*.a.com'])).toBe(false);
    expect(covered('xa.com', ['*.a.com'])).toBe(false);
  });

  it('a requested wildcard needs the identical wildcard SAN', () => {
    expect(covered('*.a.com', ['*.a.com'])).toBe(true);
    expect(covered('*.a.com', ['x.a.com', 'a.com'])).toBe(false);
    expect(covered('*.x.a.com', ['*.a.com'])).toBe(false);
  });

  it('IPs are covered only by IP SANs, compared canonically', () => {
    expect(covered('::1', ['0::1'])).toBe(true);
    expect(covered('127.0.0.1', ['localhost'])).toBe(false);
  });

  it('a wildcard stands only for letters, digits and hyphens, over a base clients expand', () => {
    expect(covered('un_der.a.com', ['*.a.com'])).toBe(false); // OpenSSL refuses the underscore
    expect(covered('x.b_c.com', ['*.b_c.com'])).toBe(false); // OpenSSL takes that wildcard literally
    expect(covered('xn--bcher-kva.a.com', ['*.a.com'])).toBe(true);
    expect(covered('un_der.a.com', ['un_der.a.com'])).toBe(true);
  });

  it('hostMatches never throws on junk SNI', () => {
    expect(hostMatches('*.a.com', 'b.a.com')).toBe(true);
    expect(hostMatches('*.a.com', '../../etc')).toBe(false);
  });
});
