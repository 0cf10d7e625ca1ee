/**
 * PKCS#12 (RFC 7292) for Java and .NET, built in-process (no `openssl` at run time): the key in a
 * pkcs8ShroudedKeyBag and the certificates in certBags, each encrypted with PBES2
 * (PBKDF2-HMAC-SHA-256, AES-256-CBC), the whole file protected by an HMAC-SHA-256 MAC under the
 * same password. Both halves carry the same localKeyId, which is how readers pair the key with
 * its certificate. Java 8u301+, OpenSSL 1.1.1+/3 and Node's `pfx` option read this form.
 */
import { createHash, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { parseCertificatePems } from '../../crypto/pem.js';
import type { DeployableGeneration } from '../target.js';

const KEY_BAG = '1.2.840.113549.1.12.10.1.2'; // pkcs8ShroudedKeyBag
const CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const ITERATIONS = 100_000;

const engine = new pkijs.CryptoEngine({
  name: 'node',
  crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
});

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function parse<T>(der: Uint8Array, make: (schema: asn1js.AsnType) => T): T {
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  if (parsed.offset === -1) throw new Error('bad DER');
  return make(parsed.result);
}

/** The PKCS#12 bytes of `generation` (leaf, intermediates, key) under `password`. */
export async function buildPkcs12(generation: DeployableGeneration, password: string): Promise<Buffer> {
  const pass = toArrayBuffer(Buffer.from(password, 'utf8'));
  const ders = parseCertificatePems(generation.chainPem);
  const keyDer = generation.key.keyObject.export({ type: 'pkcs8', format: 'der' });
  const localKeyId = new pkijs.Attribute({
    type: LOCAL_KEY_ID,
    values: [
      new asn1js.OctetString({ valueHex: toArrayBuffer(createHash('sha256').update(ders[0]!).digest()) }),
    ],
  });
  const keyBag = new pkijs.SafeBag({
    bagId: KEY_BAG,
    bagValue: new pkijs.PKCS8ShroudedKeyBag({
      parsedValue: parse(keyDer, (schema) => new pkijs.PrivateKeyInfo({ schema })),
    }),
    bagAttributes: [localKeyId],
  });
  const certBags = ders.map(
    (der, i) =>
      new pkijs.SafeBag({
        bagId: CERT_BAG,
        bagValue: new pkijs.CertBag({
          certId: X509_CERTIFICATE,
          parsedValue: parse(der, (schema) => new pkijs.Certificate({ schema })),
        }),
        ...(i === 0 ? { bagAttributes: [localKeyId] } : {}),
      }),
  );
  const encryption = {
    password: pass,
    contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 } as never,
    hmacHashAlgorithm: 'SHA-256',
    iterationCount: ITERATIONS,
  };
  await (keyBag.bagValue as pkijs.PKCS8ShroudedKeyBag).makeInternalValues(encryption, engine);
  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0, // password-based MAC
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: {
          safeContents: [
            { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [keyBag] }) },
            { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certBags }) },
          ],
        },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({ safeContents: [{}, encryption] }, engine);
  await pfx.makeInternalValues(
    {
      password: pass,
      iterations: ITERATIONS,
      pbkdf2HashAlgorithm: 'SHA-256',
      hmacHashAlgorithm: 'SHA-256',
    } as never,
    engine,
  );
  return Buffer.from(pfx.toSchema().toBER(false));
}
