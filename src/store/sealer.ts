/**
 * The encryption policy of one store: which values are sealed (private keys, by
 * `layout.isSensitive`), whether plaintext is tolerated (migration only), whether running without
 * a key is allowed, and `reencrypt` after a key rotation. The envelope format is `./envelope.ts`;
 * versioned records are `./sealed-records.ts`. Internal: not exported from the package.
 */
import { optionError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  buildHeader,
  corrupt,
  decrypt,
  ENCRYPTION_KEY_ENV,
  ENVELOPE_OVERHEAD,
  type EncryptionOptions,
  encrypt,
  hasMagic,
  type Key,
  MAGIC_V1,
  parseKeys,
  readHeader,
} from './envelope.js';
import { layout } from './layout.js';
import { RecordSealer } from './sealed-records.js';

/** What `reencrypt()` did. */
export interface ReencryptResult {
  /** Sensitive keys and sealed records looked at. */
  examined: number;
  /** Of those, rewritten with the current writing key (older key or plaintext before). */
  rewritten: number;
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
  /** Versioned records sealed with the same keys; undefined without a key. */
  readonly records: RecordSealer | undefined;

  constructor(options: EncryptionChoice | undefined, context: SealerContext) {
    const { owner, option, logger, required = false } = context;
    if (options === false || options === 'none') {
      // Deliberately unencrypted: nothing is sealed, but an envelope found anyway is still
      // reported (no-key) rather than handed out as if it were the private key.
      this.#keys = [];
      this.#sensitive = layout.isSensitive;
      this.#acceptPlaintext = true;
      this.records = undefined;
      return;
    }
    if (options === null || (options !== undefined && typeof options !== 'object')) {
      throw optionError(option, "must be an object (or 'none' to store private keys unencrypted)");
    }
    const { isSensitive = layout.isSensitive, acceptPlaintext = false } = options ?? {};
    if (typeof isSensitive !== 'function') throw optionError(`${option}.isSensitive`, 'must be a function');
    if (typeof acceptPlaintext !== 'boolean')
      throw optionError(`${option}.acceptPlaintext`, 'must be a boolean');
    this.#keys = parseKeys(options ?? {}, option);
    this.#sensitive = isSensitive;
    this.#acceptPlaintext = acceptPlaintext;
    this.records = this.#keys.length > 0 ? new RecordSealer(this.#keys) : undefined;
    if (this.#keys.length === 0 && required) {
      throw optionError(
        option,
        `holds no encryption key (set ${ENCRYPTION_KEY_ENV} or ${option}.keys): refusing to keep ` +
          `private keys unencrypted in a shared store. Pass ${option}: 'none' to do so deliberately.`,
        owner,
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
    return encrypt(writer, buildHeader(MAGIC_V1, writer), key, plain);
  }

  /** The plaintext of a stored value; `null` stays `null`. */
  open(key: string, stored: Uint8Array | null, { migrating = false } = {}): Uint8Array | null {
    if (stored === null || !this.#sensitive(key)) return stored;
    if (!hasMagic(stored, MAGIC_V1)) {
      if (this.#keys.length === 0 || this.#acceptPlaintext || migrating) return stored;
      throw corrupt(key, 'not-encrypted', 'holds an unencrypted value where an encrypted one is required');
    }
    const header = readHeader(stored, MAGIC_V1);
    if (!header) throw corrupt(key, 'malformed', 'holds a truncated encrypted value');
    return decrypt(this.#keys, stored, header, key);
  }

  /** The size of the value `stored` holds, without decrypting it. */
  plainSize(key: string, stored: Uint8Array): number {
    if (!this.#sensitive(key) || !hasMagic(stored, MAGIC_V1)) return stored.byteLength;
    const header = readHeader(stored, MAGIC_V1);
    return header ? stored.byteLength - header.end - ENVELOPE_OVERHEAD : stored.byteLength;
  }

  /** Whether `reencrypt` should rewrite this value: plaintext, or sealed with a key other than the writer. */
  isStale(key: string, stored: Uint8Array): boolean {
    const writer = this.#keys[0];
    if (!writer || !this.#sensitive(key)) return false;
    if (!hasMagic(stored, MAGIC_V1)) return true;
    const header = readHeader(stored, MAGIC_V1);
    return header !== null && header.id !== writer.id; // damaged: leave it for a reader to report
  }
}

/** The raw (stored, unsealed) operations `reencrypt` works on. */
export interface RawAccess {
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
}

/**
 * Rewrites, with the current writing key, every sensitive value below `prefix` that is plaintext
 * or sealed with an older key, and every sealed record (`./sealed-records.ts`) sealed with an
 * older key (same version). In certkeeper's layout private keys are write-once (generations are
 * immutable, account keys change only on rollover), so read-then-rewrite does not race a real
 * update; still, run it when no rollover or renewal is in progress.
 */
export async function reencrypt(sealer: Sealer, raw: RawAccess, prefix: string): Promise<ReencryptResult> {
  const records = sealer.records;
  if (sealer.writeKeyId === undefined || !records) {
    throw optionError('keys', 'must hold an encryption key to write with (reencrypt)');
  }
  const result: ReencryptResult = { examined: 0, rewritten: 0 };
  for (const key of await raw.list(prefix)) {
    const stored = await raw.get(key);
    if (stored === null) continue; // deleted meanwhile
    if (sealer.covers(key)) {
      result.examined++;
      if (!sealer.isStale(key, stored)) continue;
      const plain = sealer.open(key, stored, { migrating: true })!;
      await raw.put(key, sealer.seal(key, plain));
      result.rewritten++;
    } else if (records.isRecord(stored)) {
      result.examined++;
      const resealed = records.reseal(key, stored);
      if (resealed === null) continue;
      await raw.put(key, resealed);
      result.rewritten++;
    }
  }
  return result;
}
