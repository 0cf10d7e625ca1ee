/**
 * Minting tokens, for the host side (an orchestrator, a compose entrypoint, the CLI) and for the
 * renewal of an expired certificate.
 *
 *  - `mintToken`: a one-time enrollment token from a JWK provisioner, with the claims step-ca
 *    expects: header `{alg, kid: RFC 7638 thumbprint, typ: JWT}`, claims
 *    `iss` (provisioner name), `sub`, `sans`, `aud` = `<ca>/1.0/sign`, `nbf` = `iat` = now,
 *    `exp` = now + 5 min, a 256-bit random `jti`, `sha` = the root fingerprint.
 *  - `mintRevokeToken`: the same for `/1.0/revoke`, with `sub` = the serial (decimal).
 *  - `mintRenewToken`: the `Authorization: Bearer` token for renewing an expired certificate:
 *    signed by the certificate's own key, the chain in the `x5cInsecure` header.
 *
 * The provisioner key may be a private JWK, a PEM private key, or step-ca's `encryptedKey`
 * (a JWE, PBES2-HS256+A128KW with 100 000 PBKDF2 iterations, content type `jwk+json`) with its
 * password; one asking for more than MAX_PBES2_COUNT iterations is refused. jose is loaded on first use, so services that never mint do not load it.
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { systemClock } from '../../clock.js';
import { parseCertificates } from '../../crypto/inspect.js';
import type { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError, optionError } from '../../errors.js';
import { normalizeFingerprint } from './bootstrap.js';

const loadJose = () => import('jose');

export const TOKEN_LIFETIME_MS = 5 * 60_000;
/**
 * The most PBKDF2 iterations an encrypted provisioner key may ask for. step encrypts JWKs with
 * 100 000 and its PEM keys with 600 000 (the OWASP 2023 figure); 1 000 000 leaves room for a
 * stronger key while bounding what a planted or damaged key costs to decrypt: about 0.4 s of CPU,
 * where the former 10 000 000 cost about 4 s per attempt, blocking the caller that long.
 */
const MAX_PBES2_COUNT = 1_000_000;

/** A step-ca JWK provisioner's private key and its password. */
export interface ProvisionerKeyOptions {
  /** A private JWK (object or JSON text), a PEM private key, or step-ca's encrypted key (JWE). */
  key: JWK | string;
  /** Password of an encrypted key. */
  password?: string | Uint8Array;
}

/** A loaded provisioner key, ready to sign tokens. */
export interface ProvisionerKey {
  kid: string;
  alg: string;
  jwk: JWK;
}

function keyError(reason: string): CertkeeperError {
  // Never a `cause`: errors from decoding may quote the input.
  return new CertkeeperError('PROVISIONER_KEY_INVALID', `provisioner key: ${reason}`, {
    details: { reason },
  });
}

const invalid = (option: string, problem: string) => optionError(option, problem, 'mintToken');

function algorithmOf(jwk: JWK): string {
  if (typeof jwk.alg === 'string') return jwk.alg;
  if (jwk.kty === 'EC') {
    const alg = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv ?? ''];
    if (alg) return alg;
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'RS256';
  throw keyError(`unsupported key type ${jwk.kty ?? '?'} ${jwk.crv ?? ''}`.trim());
}

async function decryptKey(jwe: string, password: string | Uint8Array | undefined): Promise<JWK> {
  if (password === undefined || password.length === 0)
    throw keyError('the key is encrypted and no password was given');
  const jose = await loadJose();
  let count: unknown;
  try {
    count = jose.decodeProtectedHeader(jwe).p2c;
  } catch {
    throw keyError('the encrypted key has no readable header');
  }
  // Checked before jose derives anything, so the reason is said rather than "wrong password".
  if (typeof count === 'number' && count > MAX_PBES2_COUNT)
    throw keyError(
      `the encrypted key asks for ${count} PBKDF2 iterations; at most ${MAX_PBES2_COUNT} are accepted`,
    );
  const secret = typeof password === 'string' ? new TextEncoder().encode(password) : password;
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await jose.compactDecrypt(jwe, secret, {
      keyManagementAlgorithms: ['PBES2-HS256+A128KW', 'PBES2-HS384+A192KW', 'PBES2-HS512+A256KW'],
      maxPBES2Count: MAX_PBES2_COUNT,
    }));
  } catch {
    throw keyError('cannot decrypt the encrypted key: wrong password or damaged key');
  }
  try {
    return JSON.parse(Buffer.from(plaintext).toString('utf8')) as JWK;
  } catch {
    throw keyError('the decrypted key is not a JWK');
  }
}

/** Loads a provisioner's private key in any of the forms step-ca and its users keep it in. */
export async function loadProvisionerKey(options: ProvisionerKeyOptions): Promise<ProvisionerKey> {
  const jose = await loadJose();
  let jwk: JWK;
  if (typeof options.key === 'object' && options.key !== null) {
    jwk = { ...options.key };
  } else if (typeof options.key === 'string') {
    const text = options.key.trim();
    if (text.startsWith('{')) {
      try {
        jwk = JSON.parse(text) as JWK;
      } catch {
        throw keyError('the JSON is not valid');
      }
    } else if (/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/.test(text)) {
      jwk = await decryptKey(text, options.password);
    } else if (text.startsWith('-----BEGIN')) {
      try {
        jwk = await jose.exportJWK(createPrivateKey(text));
      } catch {
        throw keyError('the PEM is not a readable unencrypted private key');
      }
    } else {
      throw keyError('expected a JWK, a PEM private key, or an encrypted key (JWE)');
    }
  } else {
    throw keyError('is missing');
  }
  if (typeof jwk.d !== 'string') throw keyError('it is a public key; minting needs the private key');
  const alg = algorithmOf(jwk);
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
  const kid = typeof jwk.kid === 'string' ? jwk.kid : await jose.calculateJwkThumbprint(publicJwk);
  try {
    await jose.importJWK(jwk, alg);
  } catch {
    throw keyError(`not a usable ${alg} key`);
  }
  return { kid, alg, jwk };
}

/** Options of `mintToken`: the provisioner, the CA and the names the token allows. */
export interface MintTokenOptions extends ProvisionerKeyOptions {
  /** The CA URL the service will use (the audience is `<caUrl>/1.0/sign`). */
  caUrl: string;
  /** Root fingerprint (the `sha` claim, with which the service checks it pins the right CA). */
  rootFingerprint: string;
  /** Provisioner name (`iss`). */
  provisioner: string;
  /** Common name (`sub`). */
  subject: string;
  /** Names to certify; default `[subject]`. */
  sans?: string[];
  /** Default 5 minutes, as step does. */
  lifetimeMs?: number;
  /** Milliseconds since the epoch; default now (a host with a skewed clock, tests). */
  now?: number;
}

function endpoint(caUrl: string, path: string): string {
  let url: URL;
  try {
    url = new URL(caUrl);
  } catch {
    throw invalid('caUrl', 'must be a URL');
  }
  if (url.protocol !== 'https:') throw invalid('caUrl', 'must be an https URL');
  return new URL(path, url.href.replace(/\/?$/, '/')).href;
}

async function signClaims(
  options: Omit<MintTokenOptions, 'subject' | 'sans' | 'caUrl'>,
  claims: Record<string, unknown>,
  subject: string,
  audience: string,
): Promise<string> {
  const fingerprint = normalizeFingerprint(String(options.rootFingerprint ?? ''));
  if (!fingerprint) throw invalid('rootFingerprint', 'must be a SHA-256 fingerprint (64 hex digits)');
  if (typeof options.provisioner !== 'string' || options.provisioner === '')
    throw invalid('provisioner', 'must be the provisioner name');
  const lifetimeMs = options.lifetimeMs ?? TOKEN_LIFETIME_MS;
  if (!(Number.isFinite(lifetimeMs) && lifetimeMs >= 1000 && lifetimeMs <= 24 * 3_600_000))
    throw invalid('lifetimeMs', 'must be between 1000 and 86400000');
  const key = await loadProvisionerKey(options);
  const jose = await loadJose();
  const now = Math.floor((options.now ?? systemClock.now()) / 1000);
  return new jose.SignJWT({ ...claims, sha: fingerprint })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(options.provisioner)
    .setSubject(subject)
    .setAudience(audience)
    .setNotBefore(now)
    .setIssuedAt(now)
    .setExpirationTime(now + Math.floor(lifetimeMs / 1000))
    .setJti(randomBytes(32).toString('hex'))
    .sign(await jose.importJWK(key.jwk, key.alg));
}

/** Mints a one-time enrollment token for `subject` and `sans`. */
export async function mintToken(options: MintTokenOptions): Promise<string> {
  if (typeof options.subject !== 'string' || options.subject.trim() === '')
    throw invalid('subject', 'must be a non-empty string');
  const sans = options.sans && options.sans.length > 0 ? options.sans : [options.subject];
  if (!sans.every((s) => typeof s === 'string' && s.trim() !== ''))
    throw invalid('sans', 'must be non-empty strings');
  return signClaims(options, { sans }, options.subject, endpoint(options.caUrl, '1.0/sign'));
}

/** Mints a token that revokes the certificate with `serial` (hex, as certkeeper reports serials). */
export async function mintRevokeToken(
  options: Omit<MintTokenOptions, 'subject' | 'sans'> & { serial: string },
): Promise<string> {
  const hex = String(options.serial ?? '')
    .toLowerCase()
    .replace(/^0x/, '')
    .replace(/:/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw invalid('serial', 'must be a hexadecimal serial number');
  return signClaims(options, {}, BigInt(`0x${hex}`).toString(10), endpoint(options.caUrl, '1.0/revoke'));
}

const RENEW_ALGORITHMS: Record<string, string> = {
  'ec-p256': 'ES256',
  'ec-p384': 'ES384',
  'rsa-2048': 'RS256',
  'rsa-3072': 'RS256',
  'rsa-4096': 'RS256',
  ed25519: 'EdDSA',
};

/**
 * The renewal token of an expired certificate (step-ca's `x5cInsecure` flow): signed with the
 * certificate's key, the chain in the header, `sub` = the leaf's common name, `aud` =
 * `<ca>/1.0/renew`. "Insecure" because the CA verifies the chain ignoring expiry: it renews
 * only when it allows renewal after expiry and the certificate is not revoked.
 */
export async function mintRenewToken(options: {
  caUrl: URL;
  chainPem: string;
  key: PrivateKey;
  now: number;
}): Promise<string> {
  const chain = parseCertificates(options.chainPem, 'certificate to renew').filter(
    (c, i) => i === 0 || c.info.subject !== c.info.issuer,
  );
  const leaf = chain[0]!;
  const jose = await loadJose();
  const now = Math.floor(options.now / 1000);
  return new jose.SignJWT({})
    .setProtectedHeader({
      alg: RENEW_ALGORITHMS[options.key.type]!,
      typ: 'JWT',
      x5cInsecure: chain.map((c) => c.der.toString('base64')),
    })
    .setIssuer('step-ca-client/1.0')
    .setSubject(leaf.info.commonName ?? '')
    .setAudience(endpoint(options.caUrl.href, '1.0/renew'))
    .setNotBefore(now)
    .setIssuedAt(now)
    .setExpirationTime(now + TOKEN_LIFETIME_MS / 1000)
    .setJti(randomBytes(32).toString('hex'))
    .sign(options.key.keyObject);
}
