/**
 * Private keys. A `PrivateKey` wraps a Node `KeyObject` and refuses to print itself: `toString`,
 * `toJSON` and `util.inspect` show only the key type, so a key that ends up in a log line, an
 * event payload or `JSON.stringify(status)` leaks nothing. The PEM comes out only through the
 * explicit `toPem()`.
 */

import type { webcrypto as WebCrypto } from 'node:crypto';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  KeyObject,
  webcrypto,
} from 'node:crypto';
import { inspect, promisify } from 'node:util';
import { CertkeeperError, describeCause } from '../errors.js';
import { describeValue } from './guards.js';
import { parsePem, toPem } from './pem.js';

const generateKeyPair = promisify(generateKeyPairCb);

/** Every key type certkeeper generates and accepts. */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'] as const;
/** A key type: ECDSA P-256/P-384, RSA 2048/3072/4096 or Ed25519. */
export type KeyType = (typeof KEY_TYPES)[number];
/** The key type used when none is configured. */
export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';

type ImportAlgorithm = WebCrypto.EcKeyImportParams | WebCrypto.RsaHashedImportParams | WebCrypto.Algorithm;

interface KeySpec {
  import: ImportAlgorithm;
  sign: WebCrypto.EcdsaParams | WebCrypto.Algorithm;
}

const SPECS: Record<KeyType, KeySpec> = {
  'ec-p256': { import: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  'ec-p384': { import: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } },
  'rsa-2048': rsaSpec(),
  'rsa-3072': rsaSpec(),
  'rsa-4096': rsaSpec(),
  ed25519: { import: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
};

function rsaSpec(): KeySpec {
  return {
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  };
}

export function isKeyType(value: unknown): value is KeyType {
  return typeof value === 'string' && (KEY_TYPES as readonly string[]).includes(value);
}

function notAKeyObject(value: unknown): CertkeeperError {
  return new CertkeeperError('UNSUPPORTED_KEY', `expected a KeyObject, got ${describeValue(value)}`);
}

/** The key type of a public or private KeyObject, or null when certkeeper does not support it. */
export function keyTypeOf(key: KeyObject): KeyType | null {
  if (!(key instanceof KeyObject)) throw notAKeyObject(key);
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return 'ec-p256';
      if (details.namedCurve === 'secp384r1') return 'ec-p384';
      return null;
    case 'rsa': {
      const type = `rsa-${details.modulusLength}`;
      return isKeyType(type) ? type : null;
    }
    case 'ed25519':
      return 'ed25519';
    default:
      return null;
  }
}

const PRIVATE_LABELS = new Set(['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY']);

/** A private key whose material never appears in strings, JSON or logs; `toPem()` exports it explicitly. */
export class PrivateKey {
  readonly type: KeyType;
  readonly #key: KeyObject;
  #cryptoKeys: Promise<WebCrypto.CryptoKeyPair> | undefined;
  /** The public half is asked for on every validation; derive it once. */
  #publicKey: KeyObject | undefined;
  #spki: Buffer | undefined;

  private constructor(key: KeyObject, type: KeyType) {
    this.#key = key;
    this.type = type;
  }

  static async generate(type: KeyType = DEFAULT_KEY_TYPE): Promise<PrivateKey> {
    if (!isKeyType(type)) {
      const value: unknown = type;
      const shown = typeof value === 'string' ? `"${value.slice(0, 40)}"` : describeValue(value);
      throw new CertkeeperError('UNSUPPORTED_KEY', `unknown key type ${shown}`, {
        details: { supported: KEY_TYPES },
      });
    }
    const { privateKey } = await (type.startsWith('rsa-')
      ? generateKeyPair('rsa', { modulusLength: Number(type.slice(4)) })
      : type === 'ed25519'
        ? generateKeyPair('ed25519')
        : generateKeyPair('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384' }));
    return new PrivateKey(privateKey, type);
  }

  /**
   * Imports exactly one private key from PEM: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or
   * PKCS#1 (`RSA PRIVATE KEY`). Certificate blocks beside it are ignored (combined files are
   * common); a second private key is an error, since guessing which one is meant is how the wrong
   * key gets served.
   */
  static fromPem(pem: string | Uint8Array): PrivateKey {
    const blocks = parsePem(pem, 'private key');
    if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
      throw new CertkeeperError('UNSUPPORTED_KEY', 'private key: encrypted PKCS#8 keys are not supported');
    }
    const keys = blocks.filter((b) => PRIVATE_LABELS.has(b.label));
    if (keys.length !== 1) {
      throw new CertkeeperError(
        'MALFORMED_PEM',
        `private key: expected exactly one private key block, found ${keys.length}`,
      );
    }
    const block = keys[0]!;
    let key: KeyObject;
    try {
      const type =
        block.label === 'PRIVATE KEY' ? 'pkcs8' : block.label === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs1';
      key = createPrivateKey({ key: block.der, format: 'der', type });
    } catch (cause) {
      throw new CertkeeperError('MALFORMED_PEM', `private key: not a valid ${block.label} structure`, {
        details: { reason: describeCause(cause) },
      });
    }
    return PrivateKey.fromKeyObject(key);
  }

  static fromKeyObject(key: KeyObject): PrivateKey {
    if (!(key instanceof KeyObject)) throw notAKeyObject(key);
    if (key.type !== 'private') {
      throw new CertkeeperError('UNSUPPORTED_KEY', `expected a private key, got a ${key.type} key`);
    }
    const type = keyTypeOf(key);
    if (!type) {
      const details = key.asymmetricKeyDetails ?? {};
      const shape = [key.asymmetricKeyType, details.namedCurve, details.modulusLength]
        .filter(Boolean)
        .join(' ');
      throw new CertkeeperError('UNSUPPORTED_KEY', `unsupported private key (${shape})`, {
        details: { supported: KEY_TYPES },
      });
    }
    return new PrivateKey(key, type);
  }

  /** PKCS#8 PEM. The only way key material leaves this object. */
  toPem(): string {
    return toPem('PRIVATE KEY', this.#key.export({ type: 'pkcs8', format: 'der' }));
  }

  get keyObject(): KeyObject {
    return this.#key;
  }

  get publicKey(): KeyObject {
    this.#publicKey ??= createPublicKey(this.#key);
    return this.#publicKey;
  }

  /** SubjectPublicKeyInfo DER of the public half. */
  publicKeyDer(): Buffer {
    this.#spki ??= this.publicKey.export({ type: 'spki', format: 'der' });
    return Buffer.from(this.#spki);
  }

  /** Lowercase hex SHA-256 of the SPKI: safe to log, identifies the key. */
  publicKeyFingerprint(): string {
    return createHash('sha256').update(this.publicKeyDer()).digest('hex');
  }

  /** The WebCrypto pair @peculiar/x509 signs with, built once. */
  cryptoKeyPair(): Promise<WebCrypto.CryptoKeyPair> {
    this.#cryptoKeys ??= (async () => {
      const spec = SPECS[this.type];
      const der = this.#key.export({ type: 'pkcs8', format: 'der' });
      const privateKey = await webcrypto.subtle.importKey('pkcs8', der, spec.import, false, ['sign']);
      const publicKey = await webcrypto.subtle.importKey('spki', this.publicKeyDer(), spec.import, true, [
        'verify',
      ]);
      return { privateKey, publicKey } as WebCrypto.CryptoKeyPair;
    })();
    return this.#cryptoKeys;
  }

  /** The signature algorithm certkeeper uses with this key (CSRs, certificates of the internal CA). */
  get signingAlgorithm(): KeySpec['sign'] {
    return SPECS[this.type].sign;
  }

  toString(): string {
    return `[PrivateKey ${this.type}]`;
  }

  toJSON(): { type: KeyType; material: 'redacted' } {
    return { type: this.type, material: 'redacted' };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Whether `publicKey` (or the public half of a private KeyObject) is the public half of `key`. */
export function publicKeyMatches(key: PrivateKey, publicKey: KeyObject): boolean {
  if (!(key instanceof PrivateKey)) {
    throw new CertkeeperError('UNSUPPORTED_KEY', `expected a PrivateKey, got ${describeValue(key)}`);
  }
  if (!(publicKey instanceof KeyObject) || publicKey.type === 'secret') throw notAKeyObject(publicKey);
  const pub = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  return key.publicKeyDer().equals(pub.export({ type: 'spki', format: 'der' }));
}
