// A JWK provisioner as step-ca keeps one: a P-256 key whose public JWK (with its RFC 7638
// thumbprint as `kid`) sits in ca.json, and whose private JWK is stored encrypted as a JWE
// (PBES2-HS256+A128KW, A256GCM, 100 000 PBKDF2 iterations, cty `jwk+json`), the way
// `step ca init` / `step crypto jwk create` write it. Built with jose, as the brief asks.
import { CompactEncrypt, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

export interface Provisioner {
  name: string;
  kid: string;
  /** Public JWK with kid and alg: what the CA verifies with. */
  publicJwk: JWK;
  /** Private JWK with kid and alg. */
  privateJwk: JWK;
  /** step-ca's `encryptedKey` (a compact JWE). */
  encryptedKey: string;
  password: string;
}

export async function createProvisioner(
  name = 'ops@certkeeper.test',
  password = 'correct horse',
): Promise<Provisioner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const encryptedKey = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(privateJwk)))
    .setProtectedHeader({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', cty: 'jwk+json' })
    .setKeyManagementParameters({ p2c: 100_000 })
    .encrypt(new TextEncoder().encode(password));
  return {
    name,
    kid,
    publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' },
    privateJwk,
    encryptedKey,
    password,
  };
}
