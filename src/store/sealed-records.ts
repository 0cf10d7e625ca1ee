/**
 * Versioned, authenticated records: what a store that holds encryption keys offers as
 * `Store.sealing` (see `RecordSealing` in `./store.ts`), for values that become trust or decide
 * what is served: certificate pointers, revocation lists, previous roots. Whoever can write the
 * shared store but holds no key can then neither forge such a record, nor move one from another
 * key, nor alter its version; what they can still do is put back an older record sealed for the
 * same key. The version bound into the envelope lets a reader refuse that: below the highest
 * version this store has sealed or opened for the key (in this process), or below a floor the
 * caller knows from elsewhere (`atLeast`).
 *
 * A record is an envelope of format version 2 (`./envelope.ts`): the record version is a uint64
 * in the header, so it is covered by the AAD with the store key.
 */
import { optionError } from '../errors.js';
import {
  buildHeader,
  corrupt,
  decrypt,
  encrypt,
  hasMagic,
  type Key,
  MAGIC_V2,
  readHeader,
} from './envelope.js';
import type { RecordSealing, SealedRecord } from './store.js';

const VERSION_BYTES = 8;

function checkedVersion(version: unknown, option: string): number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw optionError(option, 'must be a non-negative safe integer');
  }
  return version;
}

export class RecordSealer implements RecordSealing {
  readonly #keys: readonly Key[];
  /** The highest version sealed or opened per store key: what a replayed record falls below. */
  readonly #highest = new Map<string, number>();

  constructor(keys: readonly Key[]) {
    this.#keys = keys;
  }

  seal(key: string, value: Uint8Array | string, version: number): Uint8Array {
    checkedVersion(version, 'version');
    const writer = this.#keys[0]!;
    const plain = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    const stamp = Buffer.alloc(VERSION_BYTES);
    stamp.writeBigUInt64BE(BigInt(version));
    const sealed = encrypt(writer, buildHeader(MAGIC_V2, writer, stamp), key, plain);
    this.#saw(key, version);
    return sealed;
  }

  open(key: string, stored: Uint8Array | null, options: { atLeast?: number } = {}): SealedRecord | null {
    const floor = options.atLeast === undefined ? 0 : checkedVersion(options.atLeast, 'atLeast');
    if (stored === null) return null;
    if (!(stored instanceof Uint8Array) || !hasMagic(stored, MAGIC_V2)) {
      throw corrupt(key, 'not-sealed', 'is not a sealed record: it was written without the encryption key');
    }
    const header = readHeader(stored, MAGIC_V2, VERSION_BYTES);
    if (!header) throw corrupt(key, 'malformed', 'holds a truncated sealed record');
    const value = decrypt(this.#keys, stored, header, key);
    // Authenticated now: the version is what the writer sealed.
    const big = Buffer.from(stored.subarray(header.idEnd, header.end)).readBigUInt64BE();
    const version = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    const expected = Math.max(floor, this.#highest.get(key) ?? 0);
    if (version < expected) {
      throw corrupt(
        key,
        'replayed',
        `holds record version ${version}, older than version ${expected} already seen: an older value was put back`,
        { version, expected },
      );
    }
    this.#saw(key, version);
    return { value, version };
  }

  /** Whether `stored` is a record envelope (sealed with any key). */
  isRecord(stored: Uint8Array): boolean {
    return hasMagic(stored, MAGIC_V2);
  }

  /**
   * The record sealed again with the writing key at the same version, or null when it already is
   * (or is damaged: left for a reader to report). For `reencrypt`.
   */
  reseal(key: string, stored: Uint8Array): Uint8Array | null {
    const header = readHeader(stored, MAGIC_V2, VERSION_BYTES);
    const writer = this.#keys[0]!;
    if (!header || header.id === writer.id) return null;
    const value = decrypt(this.#keys, stored, header, key);
    const stamp = Buffer.from(stored.subarray(header.idEnd, header.end));
    return encrypt(writer, buildHeader(MAGIC_V2, writer, stamp), key, value);
  }

  #saw(key: string, version: number): void {
    if (version > (this.#highest.get(key) ?? -1)) this.#highest.set(key, version);
  }
}
