// validateBundle against real TLS clients, names: every way a CA or an attacker may spell a
// subjectAltName (see tls-clients.ts for how each row is run).
import { describe, expect, it } from 'vitest';
import { validateBundle } from '../../src/crypto/validate.js';
import { agreementTable, chainPem, leaf, type Row } from './tls-clients.js';

const rows: Row[] = [
  {
    title: 'exact DNS SAN',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'DNS SAN in upper case',
    host: 'a.test',
    build: () => leaf({ san: ['A.TEST'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'trailing-dot DNS SAN',
    host: 'a.test',
    build: () => leaf({ san: ['a.test.'] }),
    accepts: 'node',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'DNS SAN spelled like an IP, asked for the IP',
    host: '127.0.0.1',
    build: () => leaf({ san: ['127.0.0.1'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'IP SAN',
    host: '127.0.0.1',
    build: () => leaf({ san: ['IP:127.0.0.1'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'IPv6 SAN, any spelling',
    host: '2001:db8::1',
    build: () => leaf({ san: ['IP:2001:db8:0:0::1'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'IPv4 SAN for an IPv4-mapped IPv6 name',
    host: '::ffff:127.0.0.1',
    build: () => leaf({ san: ['IP:127.0.0.1'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'wildcard, one label',
    host: 'x.a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'wildcard, the bare domain',
    host: 'a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'wildcard, two labels',
    host: 'x.y.a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'wildcard over one label (*.test)',
    host: 'a.test',
    build: () => leaf({ san: ['*.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'two wildcards',
    host: 'x.y.a.test',
    build: () => leaf({ san: ['*.*.a.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'wildcard for an A-label',
    host: 'xn--bcher-kva.a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'wildcard for a label with an underscore',
    host: 'un_der.a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'node',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'wildcard over a label with an underscore',
    host: 'x.b_c.test',
    build: () => leaf({ san: ['*.b_c.test'] }),
    accepts: 'node',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'exact name with an underscore',
    host: 'un_der.a.test',
    build: () => leaf({ san: ['un_der.a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'A-label SAN',
    host: 'xn--bcher-kva.test',
    build: () => leaf({ san: ['xn--bcher-kva.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'U-label (UTF-8) SAN',
    host: 'xn--bcher-kva.test',
    build: () => leaf({ san: [{ tag: 2, bytes: Buffer.from('bücher.test') }] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'SAN with a Kelvin sign that lower-cases to k',
    host: 'kk.test',
    build: () => leaf({ san: [{ tag: 2, bytes: Buffer.from('\u212Ak.test') }] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'SAN with a NUL byte',
    host: 'a.test',
    build: () => leaf({ san: [{ tag: 2, bytes: 'a.test\u0000.evil' }] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'malformed SANs beside a good one',
    host: 'a.test',
    build: () =>
      leaf({
        san: [
          'foo bar.test',
          { tag: 2, bytes: '' },
          { tag: 7, bytes: Uint8Array.from([1, 2, 3, 4, 5]) },
          'a.test',
        ],
      }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'only malformed SANs',
    host: 'a.test',
    build: () => leaf({ san: ['foo bar.test', { tag: 7, bytes: Uint8Array.from([1, 2, 3, 4, 5]) }] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'IP SAN of 5 bytes, asked for its hex',
    host: '0102030405',
    build: () => leaf({ san: [{ tag: 7, bytes: Uint8Array.from([1, 2, 3, 4, 5]) }] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'requested wildcard, identical SAN',
    host: '*.a.test',
    build: () => leaf({ san: ['*.a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'requested wildcard, a name under it',
    host: '*.a.test',
    build: () => leaf({ san: ['x.a.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'partial-label wildcard f*',
    host: 'foo.a.test',
    build: () => leaf({ san: ['f*.a.test'] }),
    accepts: 'both',
    verdict: 'NAME_NOT_COVERED',
    stricter: 'browsers and the CA/Browser Forum rules refuse partial-label wildcards',
  },
  {
    title: 'partial-label wildcard f*o',
    host: 'fxo.a.test',
    build: () => leaf({ san: ['f*o.a.test'] }),
    accepts: 'node',
    verdict: 'NAME_NOT_COVERED',
  },
  {
    title: 'name only in the common name',
    host: 'a.test',
    build: () => leaf({ commonName: 'a.test' }),
    accepts: 'both',
    verdict: 'NAME_NOT_COVERED',
    stricter: 'browsers match subjectAltName only (RFC 6125 §6.4.4 deprecates the CN)',
  },
  {
    title: 'common name other than the DNS SAN',
    host: 'b.test',
    build: () => leaf({ commonName: 'b.test', san: ['a.test'] }),
    accepts: 'neither',
    verdict: 'NAME_NOT_COVERED',
  },
];

describe('validateBundle matches names as Node and OpenSSL both do', () => {
  agreementTable(rows);

  it('every problem is a typed error, and a malformed SAN is named in NAME_NOT_COVERED', async () => {
    const p = await leaf({
      san: ['foo bar.test', '127.0.0.1', 'a.test.', { tag: 7, bytes: Uint8Array.from([1, 2, 3]) }],
    });
    const verdict = validateBundle({ key: p.leaf.key, chain: chainPem(p), names: ['a.test', '127.0.0.1'] });
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.error.code).toBe('NAME_NOT_COVERED');
    expect(verdict.error.details.uncovered).toEqual(['a.test', '127.0.0.1']);
    expect((verdict.error.details.unusable as { san: string }[]).map((u) => u.san)).toEqual([
      'DNS:foo bar.test',
      'DNS:127.0.0.1',
      'DNS:a.test.',
      'IP:010203',
    ]);
    expect(verdict.error.message).toMatch(/spelled like an IP address/);
  });
});
