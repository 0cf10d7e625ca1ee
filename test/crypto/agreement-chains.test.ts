// validateBundle against real TLS clients, chains: every constraint OpenSSL's verifier enforces
// on issuers, anchors and the leaf, for server and client certificates (see tls-clients.ts).
import { describe } from 'vitest';
import { x509 } from '../../src/crypto/x509.js';
import { OID, rawCertificate } from './raw-certificates.js';
import {
  agreementTable,
  chain,
  critical,
  future,
  KU,
  leaf,
  past,
  type Row,
  sharedCa,
} from './tls-clients.js';

const rows: Row[] = [
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
      const { root, int } = await sharedCa();
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
      const { root, int } = await sharedCa();
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
    build: async () => ({ ...(await leaf({ san: ['a.test'] })), anchors: [(await sharedCa()).int] }),
    accepts: 'neither',
    verdict: 'UNTRUSTED_ROOT',
  },
  {
    title: 'anchors: intermediate and root',
    host: 'a.test',
    build: async () => {
      const { root, int } = await sharedCa();
      return { ...(await leaf({ san: ['a.test'] })), anchors: [int, root] };
    },
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

describe('validateBundle checks chains as Node and OpenSSL both do', () => {
  agreementTable(rows);
});
