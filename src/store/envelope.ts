/**
 * Encryption at rest: AES-256-GCM envelopes, their keys, and where the keys come from. Used by
 * `./sealer.ts` (private keys, by `layout.isSensitive`, in `EncryptedStore` and the shared stores)
 * and `./sealed-records.ts` (versioned records that become trust). Everybody who can read a
 * shared Redis or database should not thereby hold every service's private keys, nor be able to
 * write what replicas trust.
 *
 * Envelopes, all binary:
 *
 *   version 1: "CKE" 0x01 | id length (1 byte) | key id (ASCII) | IV (12 bytes) | ciphertext | GCM tag (16 bytes)
 *   version 2: "CKE" 0x02 | id length (1 byte) | key id (ASCII) | record version (uint64 BE) | IV | ciphertext | tag
 *
 * - A fresh random 96-bit IV per write: the NIST limit of 2^32 messages per key is far beyond the
 *   number of values a fleet ever writes.
 * - The key id names the encryption key, so several keys can be accepted for reading while one
 *   is used for writing (rotation). Without an explicit id it is a fingerprint of the key (first
 *   8 bytes of a domain-separated SHA-256), which identifies it without revealing anything.
 * - AAD = the envelope header (with the record version in version 2), a NUL, and the store key
 *   (keys contain no NUL). A value copied or moved to another key therefore fails to decrypt
 *   instead of being served as that key's secret, and a version cannot be altered.
 *
 * Every failure (unknown key id, wrong key, a flipped bit, a truncated or moved value) is
 * `STORE_CORRUPT` with `details.reason`, never garbage bytes. Messages name store keys and key
 * ids, never key material.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { CertkeeperError, optionError } from '../errors.js';

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

/** An encryption key and the id stored with what it encrypts. */
export interface EncryptionKey {
  /** Stored in every envelope written with this key. `[A-Za-z0-9._-]{1,64}`; default: a fingerprint. */
  id?: string;
  /** 32 bytes, or their base64 (`openssl rand -base64 32`). */
  key: Uint8Array | string;
}

/** A key: its base64 (optionally `id:base64`), its 32 bytes, or `{ id, key }`. */
export type EncryptionKeyInput = string | Uint8Array | EncryptionKey;

/** The keys for encryption at rest. */
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

/** A parsed encryption key. */
export interface Key {
  readonly id: string;
  readonly bytes: Buffer;
}

/** "CKE" + format version. */
export const MAGIC_V1 = Buffer.from([0x43, 0x4b, 0x45, 0x01]);
export const MAGIC_V2 = Buffer.from([0x43, 0x4b, 0x45, 0x02]);
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
/** Bytes an envelope adds after its header. */
export const ENVELOPE_OVERHEAD = IV_LENGTH + TAG_LENGTH;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function fingerprint(bytes: Buffer): string {
  return createHash('sha256')
    .update('certkeeper encryption key id\0')
    .update(bytes)
    .digest('hex')
    .slice(0, 16);
}

export function parseKey(input: EncryptionKeyInput, where: string): Key {
  let id: string | undefined;
  let material: unknown = input;
  if (typeof input === 'object' && input !== null && !(input instanceof Uint8Array)) {
    id = input.id;
    material = input.key;
    if (id !== undefined && (typeof id !== 'string' || !KEY_ID.test(id))) {
      throw optionError(`${where}.id`, 'must match [A-Za-z0-9._-]{1,64}');
    }
  } else if (typeof input === 'string') {
    const colon = input.indexOf(':');
    if (colon >= 0) {
      id = input.slice(0, colon).trim();
      material = input.slice(colon + 1);
      if (!KEY_ID.test(id)) throw optionError(where, 'has a key id that does not match [A-Za-z0-9._-]{1,64}');
    }
  }
  let bytes: Buffer;
  if (typeof material === 'string') {
    const text = material.trim();
    if (!BASE64.test(text)) throw optionError(where, 'must be the base64 of 32 random bytes');
    bytes = Buffer.from(text, 'base64');
  } else if (material instanceof Uint8Array) {
    bytes = Buffer.from(material);
  } else {
    throw optionError(where, 'must be a base64 string, a Uint8Array or { id, key }');
  }
  if (bytes.length !== 32) {
    throw optionError(where, `must be 32 bytes for AES-256-GCM, got ${bytes.length}`);
  }
  return { id: id ?? fingerprint(bytes), bytes };
}

/** Parses the keys of one store: `keys` if given, else the environment (see `fromProcessEnv`). */
export function parseKeys(options: EncryptionOptions, option: string): Key[] {
  const { keys, env } = options;
  if (keys !== undefined && !Array.isArray(keys)) throw optionError(`${option}.keys`, 'must be an array');
  let parsed: Key[];
  if (keys !== undefined) {
    parsed = keys.map((input, i) => parseKey(input, `${option}.keys[${i}]`));
  } else {
    const fromEnv = env === undefined || env === process.env ? fromProcessEnv() : env?.[ENCRYPTION_KEY_ENV];
    const raw = fromEnv?.trim() ?? '';
    const entries = raw === '' ? [] : raw.split(',');
    parsed = entries.map((entry, i) => parseKey(entry.trim(), `${ENCRYPTION_KEY_ENV} entry ${i + 1}`));
  }
  const ids = new Set(parsed.map((key) => key.id));
  if (ids.size !== parsed.length) throw optionError(`${option}.keys`, 'contains two keys with one id');
  return parsed;
}

export function corrupt(key: string, reason: string, why: string, extra: Record<string, unknown> = {}) {
  return new CertkeeperError('STORE_CORRUPT', `store key ${JSON.stringify(key)} ${why}`, {
    details: { key, reason, ...extra },
  });
}

export function hasMagic(stored: Uint8Array, magic: Buffer): boolean {
  return stored.byteLength >= magic.length && magic.every((byte, i) => stored[i] === byte);
}

/** Where an envelope's parts are: its key id, the end of its header, and `extra` bytes after the id. */
export interface EnvelopeHeader {
  readonly id: string;
  /** Offset of the first byte after the key id (where a version 2 envelope's record version is). */
  readonly idEnd: number;
  readonly end: number;
}

/** The header of an envelope (magic already checked), or null when it is too short to be one. */
export function readHeader(stored: Uint8Array, magic: Buffer, extra = 0): EnvelopeHeader | null {
  if (stored.byteLength <= magic.length) return null;
  const idEnd = magic.length + 1 + stored[magic.length]!;
  const end = idEnd + extra;
  if (stored.byteLength < end + ENVELOPE_OVERHEAD) return null;
  return { id: Buffer.from(stored.subarray(magic.length + 1, idEnd)).toString('ascii'), idEnd, end };
}

/** `magic | id length | id | extra`, the start of an envelope written with `writer`. */
export function buildHeader(magic: Buffer, writer: Key, extra: Uint8Array = new Uint8Array(0)): Buffer {
  const id = Buffer.from(writer.id, 'ascii');
  return Buffer.concat([magic, Buffer.from([id.length]), id, extra]);
}

/** Seals `plain` for store key `key` behind `header`. */
export function encrypt(writer: Key, header: Buffer, key: string, plain: Uint8Array): Uint8Array {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', writer.bytes, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad(header, key));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([header, iv, body, cipher.getAuthTag()]);
}

/** Opens an envelope whose header was read with `readHeader`; typed failures, never garbage. */
export function decrypt(
  keys: readonly Key[],
  stored: Uint8Array,
  header: EnvelopeHeader,
  key: string,
): Uint8Array {
  const { id, end } = header;
  const found = keys.find((candidate) => candidate.id === id);
  if (!found) {
    const why =
      keys.length === 0
        ? `is encrypted (key id ${JSON.stringify(id)}) but no encryption key is configured`
        : `is encrypted with key id ${JSON.stringify(id)}, which is not among the configured keys`;
    throw corrupt(key, keys.length === 0 ? 'no-key' : 'unknown-key', why, { keyId: id });
  }
  const iv = stored.subarray(end, end + IV_LENGTH);
  const tag = stored.subarray(stored.byteLength - TAG_LENGTH);
  const body = stored.subarray(end + IV_LENGTH, stored.byteLength - TAG_LENGTH);
  try {
    const decipher = createDecipheriv('aes-256-gcm', found.bytes, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aad(stored.subarray(0, end), key));
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
      { keyId: id },
    );
  }
}

function aad(header: Uint8Array, key: string): Buffer {
  return Buffer.concat([header, Buffer.from([0]), Buffer.from(key, 'utf8')]);
}
