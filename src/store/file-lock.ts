/**
 * Leases for `FileStore`, safe across processes (and hosts) sharing one directory.
 *
 * Each lock name has a directory `<root>/.locks/<percent-encoded name>/` of *tickets*: files
 * named by a zero-padded sequence number, holding `{ token, owner, expiresAt, ttlMs, released }`
 * as JSON. The highest ticket is the lock's state. To acquire, a contender reads the highest
 * ticket N and, if it is released or its lease has lapsed, creates ticket N+1 with
 * `link(temp, ticket)`. `link` fails if the name exists, so of two contenders exactly one wins,
 * and a ticket is never seen half-written. The ticket number is the fencing token. The classic
 * lock-file design (check staleness, delete, recreate) lets two contenders both delete a stale
 * file and both "win"; here nothing is deleted to take over.
 *
 * The highest ticket is never deleted (release and renewal rewrite it by rename), so a token is
 * never issued twice. Older tickets are garbage and the winner removes them.
 *
 * Renewal and takeover are decided by separate processes reading the clock, so a renewal issued
 * in the last instant of a lease can race a takeover; renewal re-checks afterwards and reports
 * LOCK_LOST, which is why holders renew well inside the TTL. Clock skew between hosts shortens or
 * stretches leases by the skew; keep TTLs well above it.
 *
 * **Fencing.** Each lease has a *write slot*, a directory `w<ticket number>` next to its ticket,
 * made by the winner before its lease is returned. A fenced write checks the ticket, then writes
 * its temp file into the slot and renames it from there onto the key (`FileStore.put`); a fenced
 * delete renames the value into the slot. A winner removes every older slot (renaming it away
 * first when a write left something in it) before its lease is returned; a released lease's slot waits for it (a write fenced by a
 * released lease is already refused when it checks the ticket). The kernel resolves
 * a rename's source path when the rename happens, so once a slot is gone, any write still in
 * flight through it fails (ENOENT) instead of landing: a holder that stalled between its check
 * and its rename cannot overwrite what the next holder writes, for that holder's lease only
 * exists after the slot is gone. A slot is never re-created. A lapse that nobody took over yet
 * is judged by the writer's clock when it checks the ticket.
 *
 * Tickets are not fsync-ed. Processes see each other's tickets through the page cache (and NFS
 * through close-to-open consistency) without it; fsync only matters across a power loss, after
 * which every holder is gone, so a lost or torn ticket cannot let two live holders in (a torn one
 * reads as corrupt and lapses by its mtime), and a fencing token that goes back after a reboot
 * meets no stale holder to fence. Skipping it takes 4 of the 10 fsyncs out of each
 * lock-protected certificate deployment.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DIR_MODE, ensureDirectory, isErrno, storeError, writeTemp } from './file-io.js';
import { assertStoreKey } from './layout.js';
import { abortedError, lockLostError, Waiters } from './shared.js';
import { DEFAULT_LOCK_TTL_MS, type LockLease } from './store.js';

const TICKET = /^\d{16}$/;
const ticketName = (seq: number) => String(seq).padStart(16, '0');
/** The write slot of the lease with this token (see "Fencing" above). */
const SLOT = /^w(\d{16})$/;
const slotName = (seq: number) => `w${ticketName(seq)}`;
/** A slot renamed away, waiting to be removed (by the renamer, or by the next winner if it died). */
const RETIRED = /^x\d{16}\./;

const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 250;
/** A tryLock that keeps losing races gives up after this many looks; the lock is clearly busy. */
const TRY_ATTEMPTS = 8;
/** Lock directory names longer than this are shortened (file names are limited to 255 bytes). */
const MAX_ENTRY_LENGTH = 200;

interface Ticket {
  token: number;
  owner: string;
  acquiredAt: number;
  expiresAt: number;
  ttlMs: number;
  released: boolean;
  pid: number;
  host: string;
}

type Read = { kind: 'ticket'; ticket: Ticket } | { kind: 'vanished' } | { kind: 'corrupt'; mtimeMs: number };
type Attempt = { kind: 'acquired'; lease: LockLease } | { kind: 'busy'; until: number } | { kind: 'changed' };

/** Wakes waiters in this process when a FileStore here releases; other processes poll. */
const releases = new Waiters();

function parseTicket(text: string, seq: number): Ticket | null {
  try {
    const t = JSON.parse(text) as Partial<Ticket>;
    const ok =
      t !== null &&
      typeof t === 'object' &&
      t.token === seq &&
      typeof t.owner === 'string' &&
      Number.isFinite(t.expiresAt) &&
      typeof t.ttlMs === 'number' &&
      t.ttlMs > 0 &&
      typeof t.released === 'boolean';
    return ok ? (t as Ticket) : null;
  } catch {
    return null;
  }
}

function ticketsIn(entries: Dirent[]): number[] {
  return entries
    .filter((entry) => entry.isFile() && TICKET.test(entry.name))
    .map((entry) => Number(entry.name))
    .sort((a, b) => a - b);
}

/** Removes a retired slot: usually empty (one rmdir), else with the temp files it still held. */
async function discard(path: string): Promise<void> {
  try {
    await rmdir(path);
  } catch {
    await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

function leaseOf(name: string, ticket: Ticket): LockLease {
  return Object.freeze({ name, token: ticket.token, owner: ticket.owner, expiresAt: ticket.expiresAt });
}

export class FileLocks {
  readonly #area: string;
  readonly #checkOpen: () => void;
  readonly #closed: AbortSignal;

  /** `area` is the directory holding one sub-directory per lock name. */
  constructor(area: string, checkOpen: () => void, closed: AbortSignal) {
    this.#area = area;
    this.#checkOpen = checkOpen;
    this.#closed = closed;
  }

  async tryLock(name: string, ttlMs: number): Promise<LockLease | null> {
    const dir = this.#dir(name);
    for (let i = 0; i < TRY_ATTEMPTS; i++) {
      this.#checkOpen();
      const result = await this.#attempt(name, dir, ttlMs);
      if (result.kind === 'acquired') return result.lease;
      if (result.kind === 'busy') return null;
    }
    return null;
  }

  async lock(name: string, ttlMs: number, signal?: AbortSignal): Promise<LockLease> {
    const dir = this.#dir(name);
    let poll = FIRST_POLL_MS;
    let changes = 0;
    for (;;) {
      this.#checkOpen();
      if (signal?.aborted) throw abortedError(name, signal);
      const result = await this.#attempt(name, dir, ttlMs);
      if (result.kind === 'acquired') return result.lease;
      // Lost a race: look again at once, but do not spin if the directory keeps changing.
      if (result.kind === 'changed' && ++changes % 4 !== 0) continue;
      const until = result.kind === 'busy' ? result.until : Number.POSITIVE_INFINITY;
      // Jitter spreads out contenders polling the same lock; a lapsing lease is checked right after it lapses.
      const delay = Math.min(poll * (0.75 + Math.random() / 2), until - Date.now() + 1 + Math.random() * 5);
      await releases.wait(dir, delay, signal, this.#closed);
      poll = Math.min(poll * 1.5, MAX_POLL_MS);
    }
  }

  async renew(lease: LockLease, ttlMs: number | undefined): Promise<LockLease> {
    const dir = this.#dir(lease.name);
    try {
      const read = await this.#read(dir, lease.token);
      if (read.kind !== 'ticket' || read.ticket.owner !== lease.owner || read.ticket.released) {
        throw lockLostError(lease.name, lease.token, 'released or taken over');
      }
      const now = Date.now();
      if (read.ticket.expiresAt <= now) throw lockLostError(lease.name, lease.token, 'lease lapsed');
      if ((await this.#highest(dir)) > lease.token)
        throw lockLostError(lease.name, lease.token, 'taken over');
      const ttl = ttlMs ?? read.ticket.ttlMs;
      const renewed: Ticket = { ...read.ticket, expiresAt: now + ttl, ttlMs: ttl };
      await this.#rewrite(dir, renewed, lease.name);
      // A contender that judged the old lease lapsed just before our rewrite may have won meanwhile.
      if ((await this.#highest(dir)) > lease.token)
        throw lockLostError(lease.name, lease.token, 'taken over');
      return leaseOf(lease.name, renewed);
    } catch (err) {
      throw storeError(err, `cannot renew lock "${lease.name}"`, { lock: lease.name });
    }
  }

  async release(lease: LockLease): Promise<boolean> {
    const dir = this.#dir(lease.name);
    try {
      const read = await this.#read(dir, lease.token);
      if (read.kind !== 'ticket' || read.ticket.owner !== lease.owner || read.ticket.released) return false;
      // Somebody took over after the lease lapsed; their lock is not ours to touch.
      if ((await this.#highest(dir)) > lease.token) return false;
      await this.#rewrite(dir, { ...read.ticket, released: true }, lease.name);
      releases.notify(dir);
      return true;
    } catch (err) {
      throw storeError(err, `cannot release lock "${lease.name}"`, { lock: lease.name });
    }
  }

  /**
   * The write slot of `lease` if it is still the current, unlapsed lease of its lock (by this
   * process's clock), else null. A fenced write goes through the slot (see "Fencing" above).
   */
  async slot(lease: LockLease): Promise<string | null> {
    const dir = this.#dir(lease.name);
    try {
      const read = await this.#read(dir, lease.token);
      if (read.kind !== 'ticket' || read.ticket.owner !== lease.owner || read.ticket.released) return null;
      if (read.ticket.expiresAt <= Date.now()) return null;
      if ((await this.#highest(dir)) > lease.token) return null;
      return join(dir, slotName(lease.token));
    } catch (err) {
      throw storeError(err, `cannot check lock "${lease.name}"`, { lock: lease.name });
    }
  }

  /**
   * One flat directory per lock name, its name percent-encoded: nesting `a/b` under `a` would put
   * lock directories among `a`'s tickets. Long names are shortened with a hash to fit NAME_MAX.
   */
  #dir(name: string): string {
    assertStoreKey(name);
    let entry = encodeURIComponent(name);
    if (entry.length > MAX_ENTRY_LENGTH) {
      entry = `${entry.slice(0, 100)}~${createHash('sha256').update(name).digest('hex')}`;
    }
    return join(this.#area, entry);
  }

  async #attempt(name: string, dir: string, ttlMs: number): Promise<Attempt> {
    const what = `cannot acquire lock "${name}"`;
    try {
      const highest = await this.#highest(dir, true);
      if (highest > 0) {
        const read = await this.#read(dir, highest);
        const now = Date.now();
        if (read.kind === 'vanished') return { kind: 'changed' };
        if (read.kind === 'corrupt') {
          // Tickets are written whole (link/rename), so garbage is damage, not a write in progress.
          // Honour it as held for one default TTL from its mtime so it cannot wedge the lock forever.
          const until = read.mtimeMs + DEFAULT_LOCK_TTL_MS;
          if (until > now) return { kind: 'busy', until };
        } else if (!read.ticket.released && read.ticket.expiresAt > now) {
          return { kind: 'busy', until: read.ticket.expiresAt };
        }
      }
      const token = highest + 1;
      const acquiredAt = Date.now();
      const ticket: Ticket = {
        token,
        owner: randomUUID(),
        acquiredAt,
        expiresAt: acquiredAt + ttlMs,
        ttlMs,
        released: false,
        pid: process.pid,
        host: hostname(),
      };
      const temp = await writeTemp(dir, JSON.stringify(ticket), false);
      try {
        await link(temp, join(dir, ticketName(token)));
      } catch (err) {
        if (isErrno(err, 'EEXIST')) return { kind: 'changed' };
        throw err;
      } finally {
        await unlink(temp).catch(() => {});
      }
      // A contender working from an old listing can re-create a number whose ticket was already
      // cleaned up, below the real highest. Such a ticket must not win.
      const entries = await this.#entries(dir);
      const tickets = ticketsIn(entries);
      if ((tickets.at(-1) ?? 0) > token) {
        await unlink(join(dir, ticketName(token))).catch(() => {});
        return { kind: 'changed' };
      }
      for (const old of tickets) {
        if (old < token) await unlink(join(dir, ticketName(old))).catch(() => {});
      }
      try {
        await this.#openSlot(dir, token);
        // Before the lease exists: no earlier holder's fenced write can land after this.
        await this.#retireSlots(dir, entries, token);
      } catch (err) {
        // Not fenced, so not handed out: give the lock back rather than leave it held for a lease.
        await this.#rewrite(dir, { ...ticket, released: true }, name).catch(() => {});
        throw err;
      }
      return { kind: 'acquired', lease: leaseOf(name, ticket) };
    } catch (err) {
      throw storeError(err, what, { lock: name });
    }
  }

  async #openSlot(dir: string, token: number): Promise<void> {
    const slot = join(dir, slotName(token));
    try {
      await mkdir(slot, { mode: DIR_MODE });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      // A directory left by an earlier life of this lock (tokens restarting after a power loss) is
      // ours now; anything else there (a file, a link) is junk, never followed.
      if (!(await lstat(slot)).isDirectory()) {
        await rm(slot, { force: true });
        await mkdir(slot, { mode: DIR_MODE });
      }
    }
    await chmod(slot, DIR_MODE); // mkdir's mode is filtered by the umask
  }

  /**
   * Renames away, then removes, every write slot below `token` in `entries` (listed after our
   * ticket was linked, so every slot older than it is there), and what earlier retirers left.
   */
  async #retireSlots(dir: string, entries: Dirent[], token: number): Promise<void> {
    for (const { name } of entries) {
      const slot = SLOT.exec(name);
      if (slot && Number(slot[1]) < token) {
        const path = join(dir, name);
        try {
          await rmdir(path); // empty, the usual case: gone, and that is the fence
          continue;
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue; // retired by another process meanwhile
          if (isErrno(err, 'ENOTDIR')) {
            await unlink(path).catch(() => {}); // junk under a slot's name: it never was one
            continue;
          }
          if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
        }
        // A write is in flight through it: moving the slot away fails that write's rename.
        const retired = join(dir, `x${slot[1]}.${randomUUID()}`);
        try {
          await rename(path, retired);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue;
          throw err;
        }
        await discard(retired);
      } else if (RETIRED.test(name)) {
        await discard(join(dir, name));
      }
    }
  }

  /** What is in a lock's directory; empty (and, with `create`, made) when there is none. */
  async #entries(dir: string, create = false): Promise<Dirent[]> {
    try {
      return await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      if (create) await ensureDirectory(dir);
      return [];
    }
  }

  /** Ticket numbers in ascending order. */
  async #tickets(dir: string, create = false): Promise<number[]> {
    return ticketsIn(await this.#entries(dir, create));
  }

  async #highest(dir: string, create = false): Promise<number> {
    return (await this.#tickets(dir, create)).at(-1) ?? 0;
  }

  async #read(dir: string, seq: number): Promise<Read> {
    const path = join(dir, ticketName(seq));
    try {
      const ticket = parseTicket(await readFile(path, 'utf8'), seq);
      if (ticket) return { kind: 'ticket', ticket };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return { kind: 'vanished' };
      if (!isErrno(err, 'EISDIR')) throw err;
    }
    try {
      return { kind: 'corrupt', mtimeMs: (await stat(path)).mtimeMs };
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return { kind: 'vanished' };
      throw err;
    }
  }

  async #rewrite(dir: string, ticket: Ticket, name: string): Promise<void> {
    try {
      const temp = await writeTemp(dir, JSON.stringify(ticket), false);
      try {
        await rename(temp, join(dir, ticketName(ticket.token)));
      } catch (err) {
        await unlink(temp).catch(() => {});
        throw err;
      }
    } catch (err) {
      throw storeError(err, `cannot update lock "${name}"`, { lock: name, token: ticket.token });
    }
  }
}
