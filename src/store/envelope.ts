/**
 * Private keys at rest: AES-256-GCM envelopes for the values of sensitive keys
 * (`layout.isSensitive`: `key.pem`, `*.key`), used by `EncryptedStore` and built into the shared
 * stores (`RedisStore`, `PostgresStore`). Everybody who can read a shared Redis or database should
 * not thereby hold every service's private keys.
 *
 * Envelope (version 1), all binary:
 *
 *   "CKE" 0x01 | id length (1 byte) | key id (ASCII) | IV (12 bytes) | ciphertext | GCM tag (16 bytes)
 *
 * - A fresh random 96-bit IV per write: the NIST limit of 2^32 messages per key is far beyond the
 *   number of private keys a fleet ever writes.
 * - The key id names the encryption key, so several keys can be accepted for reading while one
 *   is used for writing (rotation). Without an explicit id it is a fingerprint of the key (first
 *   8 bytes of a domain-separated SHA-256), which identifies it without revealing anything.
 * - AAD = the envelope header, a NUL, and the store key (keys contain no NUL). A value copied or
 *   moved to another key therefore fails to decrypt instead of being served as that key's secret.
 *
 * Every failure (unknown key id, wrong key, a flipped bit, a truncated or moved value, plaintext
 * where ciphertext is required) is `STORE_CORRUPT` with `details.reason`, never garbage bytes.
 * Messages name store keys and key ids, never key material.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../logger.js';
import { layout } from './layout.js';

/**
 * Environment variable read when no keys are given: `base64` or `id:base64`, comma-separated,
 * writing key first. Read from `process.env` once and then removed from it (`fromProcessEnv`).
 */
export const ENCRYPTION_KEY_ENV = 'CERTKEEPER_ENCRYPTION_KEY';

/** Where the value is kept once read: one slot for every copy of certkeeper in the process (ESM and CJS). */
const ENV_SLOT = Symbol.for('certkeeper.encryptionKeyEnv');

/**
 * The value of `CERTKEEPER_ENCRYPTION_KEY`, read once: it is removed from `process.env` as soon as
 * it is read, so child processes (spawn, exec, fork, cluster workers) do not inherit the key to
 * every private key of the fleet; later stores in this process get the value kept here. Setting
 * the variable again replaces it (and it is removed again). Give a child that needs the key its
 * own copy explicitly. The process's initial environment block (`/proc/<pid>/environ`, readable
 * by the same user) is not rewritten by this: prefer `keys` from a secrets file where that matters.
 */
function fromProcessEnv(): string {
  const slot = globalThis as { [ENV_SLOT]?: string };
  const raw = process.env[ENCRYPTION_KEY_ENV];
  if (raw !== undefined) {
    Object.defineProperty(slot, ENV_SLOT, { value: raw, writable: true, configurable: true });
    delete process.env[ENCRYPTION_KEY_ENV];
  }
  return slot[ENV_SLOT] ?? '';
}

export interface EncryptionKey {
  /** Stored in every envelope written with this key. `[A-Za-z0-9._-]{1,64}`; default: a fingerprint. */
  id?: string;
  /** 32 bytes, or their base64 (`openssl rand -base64 32`). */
  key: Uint8Array | string;
}

/** A key: its base64 (optionally `id:base64`), its 32 bytes, or `{ id, key }`. */
export type EncryptionKeyInput = string | Uint8Array | EncryptionKey;

export interface EncryptionOptions {
  /**
   * Keys accepted for reading; the first one encrypts every write. Default: the comma-separated
   * list in `CERTKEEPER_ENCRYPTION_KEY`. None at all is refused by the shared stores (unless
   * `encryption: 'none'`); `EncryptedStore` then stores values as they are, after a warning.
   */
  keys?: readonly EncryptionKeyInput[];
  /**
   * Where `CERTKEEPER_ENCRYPTION_KEY` is looked up. Default `process.env`, from which it is read
   * once and removed (children do not inherit it); an object given here is only read.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Which store keys are encrypted. Default `layout.isSensitive` (private keys). */
  isSensitive?: (key: string) => boolean;
  /**
   * Return a sensitive value found in plaintext instead of failing with `STORE_CORRUPT`. Only
   * for migrating a store written before encryption was configured: turn it on, run
   * `reencrypt()`, turn it off. Off by default, so nobody can plant a plaintext key.
   */
  acceptPlaintext?: boolean;
}

export interface ReencryptResult {
  /** Sensitive keys looked at. */
  examined: number;
  /** Of those, rewritten with the current writing key (older key or plaintext before). */
  rewritten: number;
}

interface Key {
  id: string;
  bytes: Buffer;
}

const MAGIC = Buffer.from([0x43, 0x4b, 0x45, 0x01]); // "CKE" + format version 1
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function invalidKey(where: string, why: string): CertkeeperError {
  // Never echo the offending value: it may be a (mistyped) key.
  return new CertkeeperError('INVALID_OPTION', `${where} ${why}`, { details: { option: where } });
}

function fingerprint(bytes: Buffer): string {
  return createHash('sha256')
    .update('certkeeper encryption key id\0')
    .update(bytes)
    .digest('hex')
    .slice(0, 16);
}

function parseKey(input: EncryptionKeyInput, where: string): Key {
  let id: string | undefined;
  let material: unknown = input;
  if (typeof input === 'object' && input !== null && !(input instanceof Uint8Array)) {
    id = input.id;
    material = input.key;
    if (id !== undefined && (typeof id !== 'string' || !KEY_ID.test(id))) {
      throw invalidKey(`${where}.id`, 'must match [A-Za-z0-9._-]{1,64}');
    }
  } else if (typeof input === 'string') {
    const colon = input.indexOf(':');
    if (colon >= 0) {
      id = input.slice(0, colon).trim();
      material = input.slice(colon + 1);
      if (!KEY_ID.test(id)) throw invalidKey(where, 'has a key id that does not match [A-Za-z0-9._-]{1,64}');
    }
  }
  let bytes: Buffer;
  if (typeof material === 'string') {
    const text = material.trim();
    if (!BASE64.test(text)) throw invalidKey(where, 'must be the base64 of 32 random bytes');
    bytes = Buffer.from(text, 'base64');
  } else if (material instanceof Uint8Array) {
    bytes = Buffer.from(material);
  } else {
    throw invalidKey(where, 'must be a base64 string, a Uint8Array or { id, key }');
  }
  if (bytes.length !== 32) {
    throw invalidKey(where, `must be 32 bytes for AES-256-GCM, got ${bytes.length}`);
  }
  return { id: id ?? fingerprint(bytes), bytes };
}

function corrupt(key: string, reason: string, why: string, extra: Record<string, unknown> = {}) {
  return new CertkeeperError('STORE_CORRUPT', `store key ${JSON.stringify(key)} ${why}`, {
    details: { key, reason, ...extra },
  });
}

function isEnvelope(stored: Uint8Array): boolean {
  return stored.byteLength >= MAGIC.length && MAGIC.every((byte, i) => stored[i] === byte);
}

/** Header length of an envelope, or -1 when it is too short to be one. */
function headerLength(stored: Uint8Array): number {
  if (stored.byteLength <= MAGIC.length) return -1;
  const length = MAGIC.length + 1 + stored[MAGIC.length]!;
  return stored.byteLength >= length + IV_LENGTH + TAG_LENGTH ? length : -1;
}

export interface SealerContext {
  /** Who is encrypting, for messages: "RedisStore", "EncryptedStore". */
  owner: string;
  /** The option path the keys came from, for messages: "encryption", "options". */
  option: string;
  logger: Logger;
  /**
   * No key at all is refused (`INVALID_OPTION` naming the option) instead of warned about: stores
   * shared over the network, where everyone who can read the server would hold the keys.
   */
  required?: boolean;
}

/**
 * What the shared stores accept as `encryption`: the options, or `'none'` (also `false`) to keep
 * private keys unencrypted deliberately.
 */
export type EncryptionChoice = EncryptionOptions | 'none' | false;

/** Seals and opens the values of one store. `'none'`/`false` disables encryption deliberately. */
export class Sealer {
  readonly #keys: Key[];
  readonly #sensitive: (key: string) => boolean;
  readonly #acceptPlaintext: boolean;

  constructor(options: EncryptionChoice | undefined, context: SealerContext) {
    const { owner, option, logger, required = false } = context;
    if (options === false || options === 'none') {
      // Deliberately unencrypted: nothing is sealed, but an envelope found anyway is still
      // reported (no-key) rather than handed out as if it were the private key.
      this.#keys = [];
      this.#sensitive = layout.isSensitive;
      this.#acceptPlaintext = true;
      return;
    }
    if (options === null || (options !== undefined && typeof options !== 'object')) {
      throw invalidKey(option, "must be an object (or 'none' to store private keys unencrypted)");
    }
    const { keys, env, isSensitive = layout.isSensitive, acceptPlaintext = false } = options ?? {};
    if (typeof isSensitive !== 'function') throw invalidKey(`${option}.isSensitive`, 'must be a function');
    if (typeof acceptPlaintext !== 'boolean')
      throw invalidKey(`${option}.acceptPlaintext`, 'must be a boolean');
    if (keys !== undefined && !Array.isArray(keys)) throw invalidKey(`${option}.keys`, 'must be an array');
    if (keys !== undefined) {
      this.#keys = keys.map((input, i) => parseKey(input, `${option}.keys[${i}]`));
    } else {
      const fromEnv = env === undefined || env === process.env ? fromProcessEnv() : env?.[ENCRYPTION_KEY_ENV];
      const raw = fromEnv?.trim() ?? '';
      const entries = raw === '' ? [] : raw.split(',');
      this.#keys = entries.map((entry, i) => parseKey(entry.trim(), `${ENCRYPTION_KEY_ENV} entry ${i + 1}`));
    }
    const ids = new Set(this.#keys.map((key) => key.id));
    if (ids.size !== this.#keys.length) throw invalidKey(`${option}.keys`, 'contains two keys with one id');
    this.#sensitive = isSensitive;
    this.#acceptPlaintext = acceptPlaintext;
    if (this.#keys.length === 0 && required) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        `${owner}: no encryption key configured (set ${ENCRYPTION_KEY_ENV} or ${option}.keys): refusing ` +
          `to keep private keys unencrypted in a shared store. Pass ${option}: 'none' to do so deliberately.`,
        { details: { option } },
      );
    }
    if (this.#keys.length === 0) {
      logger.warn(
        `${owner}: no encryption key configured (set ${ENCRYPTION_KEY_ENV} or ${option}.keys): ` +
          `private keys are stored UNENCRYPTED. Pass ${option}: false to do so deliberately.`,
        { store: owner },
      );
    }
  }

  /** Whether values of this key are transformed (so a stored size is not the value's size). */
  covers(key: string): boolean {
    return this.#keys.length > 0 && this.#sensitive(key);
  }

  /** The id new envelopes carry, or undefined when nothing is encrypted. */
  get writeKeyId(): string | undefined {
    return this.#keys[0]?.id;
  }

  seal(key: string, plain: Uint8Array): Uint8Array {
    const writer = this.#keys[0];
    if (!writer || !this.#sensitive(key)) return plain;
    const id = Buffer.from(writer.id, 'ascii');
    const header = Buffer.concat([MAGIC, Buffer.from([id.length]), id]);
    const iv = randomBytes(IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', writer.bytes, iv, { authTagLength: TAG_LENGTH });
    cipher.setAAD(aad(header, key));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([header, iv, body, cipher.getAuthTag()]);
  }

  /** The plaintext of a stored value; `null` stays `null`. */
  open(key: string, stored: Uint8Array | null, { migrating = false } = {}): Uint8Array | null {
    if (stored === null || !this.#sensitive(key)) return stored;
    if (!isEnvelope(stored)) {
      if (this.#keys.length === 0 || this.#acceptPlaintext || migrating) return stored;
      throw corrupt(key, 'not-encrypted', 'holds an unencrypted value where an encrypted one is required');
    }
    const header = headerLength(stored);
    if (header < 0) throw corrupt(key, 'malformed', 'holds a truncated encrypted value');
    const id = Buffer.from(stored.subarray(MAGIC.length + 1, header)).toString('ascii');
    const found = this.#keys.find((candidate) => candidate.id === id);
    if (!found) {
      const why =
        this.#keys.length === 0
          ? `is encrypted (key id ${JSON.stringify(id)}) but no encryption key is configured`
          : `is encrypted with key id ${JSON.stringify(id)}, which is not among the configured keys`;
      throw corrupt(key, this.#keys.length === 0 ? 'no-key' : 'unknown-key', why, { keyId: id });
    }
    const iv = stored.subarray(header, header + IV_LENGTH);
    const tag = stored.subarray(stored.byteLength - TAG_LENGTH);
    const body = stored.subarray(header + IV_LENGTH, stored.byteLength - TAG_LENGTH);
    try {
      const decipher = createDecipheriv('aes-256-gcm', found.bytes, iv, { authTagLength: TAG_LENGTH });
      decipher.setAAD(aad(stored.subarray(0, header), key));
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([decipher.update(body), decipher.final()]);
      return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
    } catch {
      // GCM says only "unable to authenticate": a wrong key, altered bytes, or a value moved here
      // from another key all look the same, and no partial plaintext is ever returned.
      throw corrupt(
        key,
        'decrypt-failed',
        `cannot be decrypted with key id ${JSON.stringify(id)}: wrong key, or the value was altered or moved`,
        {
          keyId: id,
        },
      );
    }
  }

  /** The size of the value `stored` holds, without decrypting it. */
  plainSize(key: string, stored: Uint8Array): number {
    if (!this.#sensitive(key) || !isEnvelope(stored)) return stored.byteLength;
    const header = headerLength(stored);
    return header < 0 ? stored.byteLength : stored.byteLength - header - IV_LENGTH - TAG_LENGTH;
  }

  /** Whether `reencrypt` should rewrite this value: plaintext, or sealed with a key other than the writer. */
  isStale(key: string, stored: Uint8Array): boolean {
    const writer = this.#keys[0];
    if (!writer || !this.#sensitive(key)) return false;
    if (!isEnvelope(stored)) return true;
    const header = headerLength(stored);
    if (header < 0) return false; // damaged: leave it for a reader to report
    return Buffer.from(stored.subarray(MAGIC.length + 1, header)).toString('ascii') !== writer.id;
  }
}

function aad(header: Uint8Array, key: string): Buffer {
  return Buffer.concat([header, Buffer.from([0]), Buffer.from(key, 'utf8')]);
}

/** The raw (stored, unsealed) operations `reencrypt` works on. */
export interface RawAccess {
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
}

/**
 * Rewrites every sensitive value below `prefix` that is plaintext or sealed with an older key,
 * with the current writing key. In certkeeper's layout private keys are write-once (generations
 * are immutable, account keys change only on rollover), so read-then-rewrite does not race a
 * real update; still, run it when no rollover is in progress.
 */
export async function reencrypt(sealer: Sealer, raw: RawAccess, prefix: string): Promise<ReencryptResult> {
  if (sealer.writeKeyId === undefined) {
    throw new CertkeeperError('INVALID_OPTION', 'reencrypt needs an encryption key to write with', {
      details: { option: 'keys' },
    });
  }
  const result: ReencryptResult = { examined: 0, rewritten: 0 };
  for (const key of await raw.list(prefix)) {
    if (!sealer.covers(key)) continue;
    const stored = await raw.get(key);
    if (stored === null) continue; // deleted meanwhile
    result.examined++;
    if (!sealer.isStale(key, stored)) continue;
    const plain = sealer.open(key, stored, { migrating: true })!;
    await raw.put(key, sealer.seal(key, plain));
    result.rewritten++;
  }
  return result;
}
