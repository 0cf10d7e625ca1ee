/**
 * The one owner of the embedded CA's state in a store: reading it (every issuance re-reads it, so
 * a replica never signs with an intermediate another replica replaced), changing it under the CA
 * lock with one commit, and refusing what must not be believed:
 *
 * - a state older than one this object has already seen (a replayed sealed record) is
 *   CA_STATE_ROLLBACK: it could un-revoke a certificate or bring back a compromised
 *   intermediate;
 * - a state that disappeared after it existed is CA_ROOT_MISSING, never a new CA. A new root is
 *   made only on first use of an empty store: nothing of this CA in its directory and no
 *   certificate it issued in the store.
 *
 * After each commit, and once at start-up (the first use by this object), the readable copies
 * `root.pem` and `intermediate.pem` are brought in line with the state (a crash may have left
 * them behind) and the files of an older store's layout, once taken over, are deleted. certkeeper
 * never reads those copies back.
 */
import { CertkeeperError } from '../../errors.js';
import { layout } from '../../store/layout.js';
import type { Store } from '../../store/store.js';
import { withLock } from '../../store/with-lock.js';
import type { CaProfile } from './authority.js';
import { caRootMissing, legacyFiles, readLegacy } from './legacy.js';
import { type CaState, decodeState, encodeState, publishedRoots, STATE_FILE } from './state.js';
import { createState, heal, needsHealing } from './transitions.js';

const COPIES = ['root.pem', 'intermediate.pem'] as const;

export class CaRecord {
  readonly #profile: CaProfile;
  readonly #issuerId: string;
  readonly #lockTtlMs: () => number;
  readonly #onRootsChanged: () => void;
  /** The last record decoded, by its bytes: decoding checks every key and signature (~ms). */
  #decoded: { raw: Uint8Array; state: CaState } | undefined;
  /** The newest version this object has read or written: what it must never go back from. */
  #seen: number | undefined;
  #tidied = false;

  constructor(profile: CaProfile, issuerId: string, lockTtlMs: () => number, onRootsChanged: () => void) {
    this.#profile = profile;
    this.#issuerId = issuerId;
    this.#lockTtlMs = lockTtlMs;
    this.#onRootsChanged = onRootsChanged;
  }

  #key(file: string): string {
    return layout.ca(this.#profile.name, file);
  }

  /** The committed state, or null when the store has none (yet). */
  async read(store: Store): Promise<CaState | null> {
    return (await this.#load(store)).state;
  }

  async #load(store: Store): Promise<{ raw: Uint8Array | null; state: CaState | null }> {
    const raw = await store.get(this.#key(STATE_FILE));
    if (!raw) {
      if (this.#seen !== undefined) throw this.#disappeared();
      return { raw, state: null };
    }
    const cached = this.#decoded;
    const state =
      cached && Buffer.compare(cached.raw, raw) === 0 ? cached.state : decodeState(this.#profile.name, raw);
    if (this.#seen !== undefined && state.version < this.#seen) {
      throw new CertkeeperError(
        'CA_STATE_ROLLBACK',
        `internal CA ${this.#profile.name}: the store holds version ${state.version} of the CA, older than ` +
          `version ${this.#seen} read before (a replayed or restored copy); refusing it. After restoring ` +
          'a backup on purpose, restart the processes using this CA',
        { details: { version: state.version, seen: this.#seen } },
      );
    }
    this.#decoded = { raw, state };
    this.#seen = state.version;
    return { raw, state };
  }

  /** The state, usable at `now`: made on first use, healed, tidied once (see the file comment). */
  async ready(store: Store, now: number, signal?: AbortSignal): Promise<CaState> {
    const state = await this.read(store);
    if (state && this.#tidied && !needsHealing(state, this.#profile, now)) return state;
    if (state && !needsHealing(state, this.#profile, now) && !(await this.#untidy(store, state))) {
      this.#tidied = true;
      return state;
    }
    return this.change(store, now, (s) => s, signal);
  }

  /**
   * Runs `fn` on the current state under the CA lock and commits what it returns (healed first,
   * made first on first use). Resolves with the state now committed.
   */
  async change(
    store: Store,
    now: number,
    fn: (state: CaState) => Promise<CaState> | CaState,
    signal?: AbortSignal,
  ): Promise<CaState> {
    return this.#locked(store, signal, async (lost) => {
      const { raw, state: before } = await this.#load(store);
      const { state: base, legacy } = before
        ? { state: before, legacy: [] }
        : await this.#initial(store, now);
      const next = await fn(await heal(base, this.#profile, now));
      if (next === before) {
        await this.#tidy(store, before, legacy);
        return before;
      }
      // A lease lost while working, or another writer since the read (a holder that stalled past
      // its lease): committing now could undo that writer's change.
      const again = await store.get(this.#key(STATE_FILE));
      const unchanged = raw === null ? again === null : again !== null && Buffer.compare(again, raw) === 0;
      if (lost.aborted || !unchanged) {
        throw new CertkeeperError(
          'LOCK_LOST',
          `internal CA ${this.#profile.name}: the CA lock was lost; retry`,
        );
      }
      const committed = await this.#commit(store, next, base.version);
      await this.#tidy(store, committed, legacy);
      if (!before || publishedRoots(before).join() !== publishedRoots(committed).join())
        this.#onRootsChanged();
      return committed;
    });
  }

  #locked<T>(
    store: Store,
    signal: AbortSignal | undefined,
    fn: (lost: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return withLock(store, `ca/${this.#profile.name}`, (_lease, lost) => fn(lost), {
      ttlMs: this.#lockTtlMs(),
      ...(signal ? { signal } : {}),
    });
  }

  /** The one write of a change. */
  async #commit(store: Store, state: CaState, after: number): Promise<CaState> {
    const committed = { ...state, version: Math.max(after, this.#seen ?? 0) + 1 };
    const encoded = Buffer.from(encodeState(committed));
    await store.put(this.#key(STATE_FILE), encoded);
    this.#decoded = { raw: encoded, state: committed };
    this.#seen = committed.version;
    return committed;
  }

  /**
   * Starts the CA over after its state was lost (CA_ROOT_MISSING): a new root and intermediate
   * (`make`: an online root by default; `ca init` makes one whose key stays offline).
   * Refuses while a state exists (a root is rotated, never replaced).
   */
  async recreate(
    store: Store,
    now: number,
    make: () => Promise<CaState> = () => createState(this.#profile, now),
    step = 'recreate',
  ): Promise<CaState> {
    return this.#locked(store, undefined, async () => {
      if (await store.get(this.#key(STATE_FILE))) {
        throw new CertkeeperError(
          'CA_ROTATION_STATE',
          `internal CA ${this.#profile.name}: ${step}: the CA exists; rotate its root instead`,
          { details: { step } },
        );
      }
      const state = await this.#commit(store, await make(), 0);
      await this.#tidy(store, state, []);
      this.#onRootsChanged();
      return state;
    });
  }

  /** The state to start from when the store has none: an older store's CA, or a new one. */
  async #initial(store: Store, now: number): Promise<{ state: CaState; legacy: string[] }> {
    const names = (await store.list(layout.caDir(this.#profile.name))).map((k) =>
      k.slice(k.lastIndexOf('/') + 1),
    );
    const old = await readLegacy(store, this.#profile, names, now);
    if (old) return { state: old, legacy: legacyFiles(names) };
    if (names.length > 0) {
      throw caRootMissing(
        this.#profile.name,
        [STATE_FILE],
        `the CA's state is gone but ${names.join(', ')} remain; restore ${STATE_FILE} from a backup, or call recreate()`,
      );
    }
    if ((await store.list(layout.certificatesOf(this.#issuerId))).length > 0) {
      throw caRootMissing(
        this.#profile.name,
        [STATE_FILE],
        'the store holds certificates this CA issued; restore its state from a backup, or call recreate()',
      );
    }
    return { state: await createState(this.#profile, now), legacy: [] };
  }

  #disappeared(): CertkeeperError {
    return caRootMissing(
      this.#profile.name,
      [STATE_FILE],
      'the CA existed and its state is gone from the store; restore it from a backup, or call recreate()',
    );
  }

  /** Whether the copies or an older layout's files need the lock's attention. */
  async #untidy(store: Store, state: CaState): Promise<boolean> {
    const [root, intermediate, keys] = await Promise.all([
      store.get(this.#key('root.pem')),
      store.get(this.#key('intermediate.pem')),
      store.list(layout.caDir(this.#profile.name)),
    ]);
    const differs = (raw: Uint8Array | null, pem: string) =>
      !raw || Buffer.from(raw).toString('utf8') !== pem;
    return (
      differs(root, state.root.certificate.pem) ||
      differs(intermediate, state.intermediate.certificate.pem) ||
      legacyFiles(keys.map((k) => k.slice(k.lastIndexOf('/') + 1))).length > 0
    );
  }

  /** Under the lock, after a commit: copies in line with `state`; an older layout's files gone. */
  async #tidy(store: Store, state: CaState, legacy: string[]): Promise<void> {
    const pems = {
      'root.pem': state.root.certificate.pem,
      'intermediate.pem': state.intermediate.certificate.pem,
    };
    for (const file of COPIES) {
      const raw = await store.get(this.#key(file));
      if (!raw || Buffer.from(raw).toString('utf8') !== pems[file])
        await store.put(this.#key(file), pems[file]);
    }
    const names = (await store.list(layout.caDir(this.#profile.name))).map((k) =>
      k.slice(k.lastIndexOf('/') + 1),
    );
    // Key files last: a crash half-way leaves certificates without keys, which nothing reads.
    const stale = [...new Set([...legacy, ...legacyFiles(names)])].sort(
      (a, b) => Number(a.includes('-key')) - Number(b.includes('-key')),
    );
    for (const file of stale) await store.delete(this.#key(file));
    this.#tidied = true;
  }
}
