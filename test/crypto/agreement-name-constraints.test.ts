// validateBundle against real TLS clients, name constraints of a CA (DNS and IP forms, the ones
// TLS names use; see tls-clients.ts).
import { describe } from 'vitest';
import { x509 } from '../../src/crypto/x509.js';
import { nameConstraints } from './raw-certificates.js';
import { agreementTable, chain, type Row } from './tls-clients.js';

const rows: Row[] = [
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
];

describe('validateBundle enforces name constraints as Node and OpenSSL both do', () => {
  agreementTable(rows);
});
