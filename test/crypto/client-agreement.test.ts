// validateBundle against real TLS clients: one table of certificates (names spelled every way a
// CA or an attacker may spell them, chains with every constraint OpenSSL enforces), each run
// through `openssl verify` (with -verify_hostname / -verify_ip) and through a real Node TLS
// handshake (Node's chain verification, then tls.checkServerIdentity on the peer certificate).
// validateBundle must accept exactly the rows both clients accept, and its first problem is
// pinned per row. Where the two clients disagree the row says who accepts; validateBundle then
// refuses (a certificate must work for every client). Two rows are refused although both accept,
// each with its reason (browsers refuse them).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateBundle } from '../../src/crypto/validate.js';
import { x509 } from '../../src/crypto/x509.js';
import type { ErrorCode } from '../../src/errors.js';
import { listen } from '../support/tls.js';
import { nameConstraints, OID, type RawAuthority, type RawSpec, rawCertificate } from './raw-certificates.js';

const KU = x509.KeyUsageFlags;
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'ck-agree-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Path {
  leaf: RawAuthority;
  intermediates: RawAuthority[];
  anchors: RawAuthority[];
}

let root: RawAuthority;
let int: RawAuthority;
beforeAll(async () => {
  root = await rawCertificate({ basic: { ca: true }, commonName: 'Agreement Root' });
  int = await rawCertificate({
    issuer: root,
    basic: { ca: true, pathLength: 0 },
    commonName: 'Agreement CA',
  });
});

/** A leaf (serverAuth unless told) under the shared root → intermediate. */
async function leaf(spec: RawSpec): Promise<Path> {
  return {
    leaf: await rawCertificate({ issuer: int, eku: [OID.serverAuth], ...spec }),
    intermediates: [int],
    anchors: [root],
  };
}

/** root → intermediate → leaf with the given twists at each level. */
async function chain(rootSpec: RawSpec, intSpec: RawSpec, leafSpec: RawSpec = {}): Promise<Path> {
  const r = await rawCertificate({ basic: { ca: true }, commonName: 'Row Root', ...rootSpec });
  const i = await rawCertificate({ issuer: r, basic: { ca: true }, commonName: 'Row CA', ...intSpec });
  const l = await rawCertificate({ issuer: i, san: ['a.test'], eku: [OID.serverAuth], ...leafSpec });
  return { leaf: l, intermediates: [i], anchors: [r] };
}

const critical = (oid: string) => new x509.Extension(oid, true, Uint8Array.from([0x05, 0x00]));
const past = { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) };
const future = { notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 10 * DAY) };

type Accepts = 'both' | 'node' | 'openssl' | 'neither';
interface Row {
  title: string;
  /** The name a server row is asked for (and the clients check); client rows have none. */
  host?: string;
  purpose?: 'server' | 'client';
  build: () => Promise<Path>;
  /** Which of the two clients accept it (checked, so the table documents them). */
  accepts: Accepts;
  /** validateBundle's verdict: 'ok' or its first problem's code. */
  verdict: 'ok' | ErrorCode;
  /** Why validateBundle refuses a row both clients accept. */
  stricter?: string;
}

const rows: Row[] = [
  // Names
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
  // Issuers
  {
    title: 'leaf signed by an end-entity certificate',
    host: 'a.test',
    build: () => chain({}, { basic: { ca: false }, keyUsage: KU.digitalSignature }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'intermediate without basicConstraints, keyCertSign',
    host: 'a.test',
    build: () => chain({}, { basic: null, keyUsage: KU.keyCertSign }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'intermediate CA without keyCertSign',
    host: 'a.test',
    build: () => chain({}, { keyUsage: KU.digitalSignature }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'intermediate CA without keyUsage',
    host: 'a.test',
    build: () => chain({}, { keyUsage: null }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'intermediate pathLen 0 above another CA',
    host: 'a.test',
    build: async () => {
      const i2 = await rawCertificate({ issuer: int, basic: { ca: true } });
      return {
        leaf: await rawCertificate({ issuer: i2, san: ['a.test'] }),
        intermediates: [i2, int],
        anchors: [root],
      };
    },
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'self-issued CA under pathLen 0 (not counted)',
    host: 'a.test',
    build: async () => {
      const i2 = await rawCertificate({ issuer: int, basic: { ca: true }, commonName: 'Agreement CA' });
      return {
        leaf: await rawCertificate({ issuer: i2, san: ['a.test'] }),
        intermediates: [i2, int],
        anchors: [root],
      };
    },
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'root with pathLen 0 above an intermediate',
    host: 'a.test',
    build: () => chain({ basic: { ca: true, pathLength: 0 } }, {}),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'intermediate EKU clientAuth only',
    host: 'a.test',
    build: () => chain({}, { eku: [OID.clientAuth] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'intermediate EKU anyExtendedKeyUsage only',
    host: 'a.test',
    build: () => chain({}, { eku: [OID.anyEku] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'intermediate EKU serverAuth and clientAuth',
    host: 'a.test',
    build: () => chain({}, { eku: [OID.serverAuth, OID.clientAuth] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'root EKU clientAuth only',
    host: 'a.test',
    build: () => chain({ eku: [OID.clientAuth] }, {}),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'root without basicConstraints, keyCertSign',
    host: 'a.test',
    build: () => chain({ basic: null, keyUsage: KU.keyCertSign }, {}),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'root without basicConstraints or keyUsage',
    host: 'a.test',
    build: () => chain({ basic: null, keyUsage: null }, {}),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'root with cA false',
    host: 'a.test',
    build: () => chain({ basic: { ca: false }, keyUsage: KU.keyCertSign }, {}),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'root without keyCertSign',
    host: 'a.test',
    build: () => chain({ keyUsage: KU.digitalSignature }, {}),
    accepts: 'neither',
    verdict: 'UNTRUSTED_ROOT',
  },
  {
    title: 'expired root',
    host: 'a.test',
    build: () => chain(past, {}),
    accepts: 'neither',
    verdict: 'EXPIRED',
  },
  {
    title: 'root not yet valid',
    host: 'a.test',
    build: () => chain(future, {}),
    accepts: 'neither',
    verdict: 'NOT_YET_VALID',
  },
  {
    title: 'expired intermediate',
    host: 'a.test',
    build: () => chain({}, past),
    accepts: 'neither',
    verdict: 'EXPIRED',
  },
  {
    title: 'leaf not yet valid',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], ...future }),
    accepts: 'neither',
    verdict: 'NOT_YET_VALID',
  },
  {
    title: 'unknown critical extension on the leaf',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], extensions: [critical('1.2.3.4')] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'unknown critical extension on the intermediate',
    host: 'a.test',
    build: () => chain({}, { extensions: [critical('1.2.3.4')] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'unknown critical extension on the root',
    host: 'a.test',
    build: () => chain({ extensions: [critical('1.2.3.4')] }, {}),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'critical TLS feature (must-staple) extension',
    host: 'a.test',
    build: () =>
      leaf({
        san: ['a.test'],
        extensions: [
          new x509.Extension('1.3.6.1.5.5.7.1.24', true, Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x05])),
        ],
      }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'SAN extension that does not decode',
    host: 'a.test',
    build: () =>
      leaf({
        extensions: [new x509.Extension('2.5.29.17', false, Uint8Array.from([0x30, 0x05, 0x82, 0x09, 0x61]))],
      }),
    accepts: 'neither',
    verdict: 'MALFORMED_PEM',
  },
  {
    title: 'anchor is the intermediate only (no root)',
    host: 'a.test',
    build: async () => ({ ...(await leaf({ san: ['a.test'] })), anchors: [int] }),
    accepts: 'neither',
    verdict: 'UNTRUSTED_ROOT',
  },
  {
    title: 'anchors: intermediate and root',
    host: 'a.test',
    build: async () => ({ ...(await leaf({ san: ['a.test'] })), anchors: [int, root] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'self-signed leaf as its own anchor',
    host: 'a.test',
    build: async () => {
      const l = await rawCertificate({ san: ['a.test'] });
      return { leaf: l, intermediates: [], anchors: [l] };
    },
    accepts: 'both',
    verdict: 'ok',
  },
  // Name constraints of a CA (DNS and IP forms)
  {
    title: 'name constraints: permitted b.org, leaf a.test',
    host: 'a.test',
    build: () => chain({}, { extensions: [nameConstraints({ permitted: ['b.org'] })] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints: permitted a.test, leaf a.test and x.a.test',
    host: 'x.a.test',
    build: () =>
      chain(
        {},
        { extensions: [nameConstraints({ permitted: ['a.test'] })] },
        { san: ['a.test', 'x.a.test'] },
      ),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'name constraints: permitted a.test, leaf xa.test (not a label boundary)',
    host: 'xa.test',
    build: () =>
      chain({}, { extensions: [nameConstraints({ permitted: ['a.test'] })] }, { san: ['xa.test'] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints: permitted .a.test, leaf a.test itself',
    host: 'a.test',
    build: () => chain({}, { extensions: [nameConstraints({ permitted: ['.a.test'] })] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints: permitted a.test, wildcard leaf *.a.test',
    host: 'x.a.test',
    build: () =>
      chain({}, { extensions: [nameConstraints({ permitted: ['a.test'] })] }, { san: ['*.a.test'] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'name constraints: excluded evil.test, leaf x.evil.test beside a.test',
    host: 'a.test',
    build: () =>
      chain(
        {},
        { extensions: [nameConstraints({ excluded: ['evil.test'] })] },
        { san: ['a.test', 'x.evil.test'] },
      ),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints on the root: permitted b.org',
    host: 'a.test',
    build: () => chain({ extensions: [nameConstraints({ permitted: ['b.org'] })] }, {}),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints: permitted 10.0.0.0/8, leaf IP 10.1.2.3',
    host: '10.1.2.3',
    build: () =>
      chain(
        {},
        { extensions: [nameConstraints({ permitted: ['IP:10.0.0.0/255.0.0.0'] })] },
        { san: ['IP:10.1.2.3'] },
      ),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'name constraints: permitted 10.0.0.0/8, leaf IP 127.0.0.1',
    host: '127.0.0.1',
    build: () =>
      chain(
        {},
        { extensions: [nameConstraints({ permitted: ['IP:10.0.0.0/255.0.0.0'] })] },
        { san: ['IP:127.0.0.1'] },
      ),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints: DNS only, IP-only leaf whose common name is outside them',
    host: '127.0.0.1',
    build: () =>
      chain(
        {},
        { extensions: [nameConstraints({ permitted: ['a.test'] })] },
        { san: ['IP:127.0.0.1'], commonName: 'other.org' },
      ),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  {
    title: 'name constraints that do not decode',
    host: 'a.test',
    build: () =>
      chain(
        {},
        {
          extensions: [
            new x509.Extension('2.5.29.30', true, Uint8Array.from([0x30, 0x03, 0xa0, 0x05, 0x82])),
          ],
        },
      ),
    accepts: 'neither',
    verdict: 'MALFORMED_PEM',
  },
  {
    title: 'name constraints with a maximum',
    host: 'a.test',
    build: () => chain({}, { extensions: [nameConstraints({ permitted: ['a.test'] }, 3)] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
  // The leaf's usages
  {
    title: 'leaf without EKU',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], eku: null }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'leaf EKU anyExtendedKeyUsage only',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], eku: [OID.anyEku] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'leaf EKU clientAuth only',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], eku: [OID.clientAuth] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'leaf EKU serverAuth and clientAuth',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], eku: [OID.serverAuth, OID.clientAuth] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'leaf keyUsage keyCertSign only',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], keyUsage: KU.keyCertSign }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'leaf keyUsage keyAgreement only',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], keyUsage: KU.keyAgreement }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'leaf without keyUsage',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], keyUsage: null }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'leaf that is also a CA',
    host: 'a.test',
    build: () =>
      leaf({ san: ['a.test'], basic: { ca: true }, keyUsage: KU.digitalSignature | KU.keyCertSign }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'leaf with cA false and a pathLen',
    host: 'a.test',
    build: () => leaf({ san: ['a.test'], basic: { ca: false, pathLength: 2 } }),
    accepts: 'both',
    verdict: 'ok',
  },
  // Client certificates (the server verifies them: no name check)
  {
    title: 'client: EKU clientAuth',
    purpose: 'client',
    build: () => leaf({ eku: [OID.clientAuth] }),
    accepts: 'both',
    verdict: 'ok',
  },
  {
    title: 'client: EKU serverAuth only',
    purpose: 'client',
    build: () => leaf({ eku: [OID.serverAuth] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'client: intermediate EKU serverAuth only',
    purpose: 'client',
    build: () => chain({}, { eku: [OID.serverAuth] }, { eku: [OID.clientAuth] }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'client: keyUsage keyEncipherment only',
    purpose: 'client',
    build: () => leaf({ eku: [OID.clientAuth], keyUsage: KU.keyEncipherment }),
    accepts: 'neither',
    verdict: 'WRONG_PURPOSE',
  },
  {
    title: 'client: leaf signed by an end-entity certificate',
    purpose: 'client',
    build: () =>
      chain({}, { basic: { ca: false }, keyUsage: KU.digitalSignature }, { eku: [OID.clientAuth] }),
    accepts: 'neither',
    verdict: 'CHAIN_INVALID',
  },
];

let n = 0;
/** `openssl verify` of the leaf with the row's intermediates and anchors, for its purpose and host. */
function opensslAccepts(p: Path, purpose: 'server' | 'client', host?: string): Promise<boolean> {
  const d = join(dir, String(n++));
  mkdirSync(d);
  writeFileSync(join(d, 'leaf.pem'), p.leaf.pem);
  writeFileSync(join(d, 'anchors.pem'), p.anchors.map((a) => a.pem).join(''));
  writeFileSync(join(d, 'untrusted.pem'), p.intermediates.map((a) => a.pem).join(''));
  const args = [
    'verify',
    '-purpose',
    purpose === 'server' ? 'sslserver' : 'sslclient',
    '-CAfile',
    join(d, 'anchors.pem'),
  ];
  if (p.intermediates.length > 0) args.push('-untrusted', join(d, 'untrusted.pem'));
  if (host) args.push(isIP(host) ? '-verify_ip' : '-verify_hostname', host);
  args.push(join(d, 'leaf.pem'));
  return new Promise((resolve) => execFile('openssl', args, { timeout: 10_000 }, (error) => resolve(!error)));
}

const chainPem = (p: Path) => p.leaf.pem + p.intermediates.map((a) => a.pem).join('');

/** A real handshake: Node's client verifies the server's chain, then checkServerIdentity(host). */
async function nodeClientAccepts(p: Path, host: string): Promise<boolean> {
  const server = tls.createServer({ key: p.leaf.key.toPem(), cert: chainPem(p) });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  try {
    return await new Promise<boolean>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: p.anchors.map((a) => a.pem),
        checkServerIdentity: (_servername, cert) => tls.checkServerIdentity(host, cert),
      });
      socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
      socket.once('secureConnect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  } finally {
    server.close();
  }
}

/** A real handshake: a Node server requiring a client certificate verifies the row's chain. */
async function nodeServerAccepts(p: Path): Promise<boolean> {
  const server = tls.createServer({
    key: root.key.toPem(),
    cert: root.pem,
    requestCert: true,
    rejectUnauthorized: false,
    ca: p.anchors.map((a) => a.pem),
  });
  const authorized = new Promise<boolean>((resolve) => {
    server.once('secureConnection', (socket) => {
      resolve(socket.authorized);
      socket.end();
    });
    server.on('tlsClientError', () => resolve(false));
  });
  const port = await listen(server);
  try {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      key: p.leaf.key.toPem(),
      cert: chainPem(p),
    });
    socket.on('error', () => {});
    const result = await authorized;
    socket.destroy();
    return result;
  } finally {
    server.close();
  }
}

function accepts(openssl: boolean, node: boolean): Accepts {
  return openssl && node ? 'both' : openssl ? 'openssl' : node ? 'node' : 'neither';
}

describe('validateBundle accepts what Node and OpenSSL both accept', () => {
  it.each(rows.map((r) => [r.title, r] as const))('%s', async (_title, row) => {
    const p = await row.build();
    const purpose = row.purpose ?? 'server';
    const [openssl, node] = await Promise.all([
      opensslAccepts(p, purpose, row.host),
      purpose === 'server' ? nodeClientAccepts(p, row.host!) : nodeServerAccepts(p),
    ]);
    const verdict = validateBundle({
      key: p.leaf.key,
      chain: chainPem(p),
      names: row.host ? [row.host] : [],
      purpose,
      trustAnchors: p.anchors.map((a) => a.pem),
    });
    const observed = { accepts: accepts(openssl, node), verdict: verdict.ok ? 'ok' : verdict.error.code };
    expect(observed).toEqual({ accepts: row.accepts, verdict: row.verdict });
    // The rule itself: accepted exactly when both clients accept, but for the documented rows.
    if (row.stricter) expect(row.accepts).toBe('both');
    else expect(verdict.ok).toBe(row.accepts === 'both');
  });

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
