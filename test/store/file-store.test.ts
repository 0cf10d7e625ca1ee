import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';
import { runStoreConformance } from '../../src/testing/index.js';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.js';

const scratch = () => mkdtemp(join(tmpdir(), 'certkeeper-fs-'));

await runStoreConformance('FileStore', async () => {
  const root = await scratch();
  // The store directory does not exist yet: every test also covers creating it on first use.
  const directory = join(root, 'store');
  return {
    store: new FileStore({ directory }),
    second: () => new FileStore({ directory }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

/** Every path below `dir`, relative, directories with a trailing slash. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => {
    const rel = join(e.parentPath ?? e.path, e.name).slice(dir.length + 1);
    return e.isDirectory() ? `${rel}/` : rel;
  });
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('FileStore on disk', () => {
  let root: string;
  let store: FileStore;

  beforeEach(async () => {
    root = await scratch();
    store = new FileStore({ directory: join(root, 'store') });
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('validates options eagerly and names the bad option', () => {
    for (const bad of [
      undefined,
      null,
      {},
      { directory: '' },
      { directory: '  ' },
      { directory: 'a\0b' },
      { directory: 7 },
    ]) {
      expect(() => new FileStore(bad as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/directory/) }),
      );
    }
  });

  it('creates files 0600 and directories 0700 whatever the umask', async () => {
    for (const umask of [0o000, 0o277]) {
      const previous = process.umask(umask);
      const dir = join(root, `umask-${umask.toString(8)}`);
      const local = new FileStore({ directory: join(dir, 'nested', 'store') });
      try {
        await local.put('certificates/ca/a.example/key.pem', 'secret');
        const lease = await local.tryLock('issue/a.example');
        expect(lease).not.toBeNull();
        await local.unlock(lease!);
      } finally {
        process.umask(previous);
        await local.close();
      }
      for (const entry of await tree(dir)) {
        const expected = entry.endsWith('/') ? 0o700 : 0o600;
        expect({ entry, mode: (await mode(join(dir, entry))).toString(8) }).toEqual({
          entry,
          mode: expected.toString(8),
        });
      }
      expect(await mode(dir)).toBe(0o700);
      expect((await tree(dir)).some((e) => e.includes('.locks/'))).toBe(true);
    }
  });

  it('reading from a missing root gives null and empty lists; the first write creates it', async () => {
    const directory = join(root, 'not', 'yet');
    const local = new FileStore({ directory });
    expect(await local.get('a')).toBeNull();
    expect(await local.stat('a')).toBeNull();
    expect(await local.list('')).toEqual([]);
    expect(await local.list('x/y')).toEqual([]);
    expect(await local.delete('a')).toBe(false);
    await expect(stat(directory)).rejects.toMatchObject({ code: 'ENOENT' });
    await local.put('a', 'v');
    expect(await mode(directory)).toBe(0o700);
    expect(await mode(join(root, 'not'))).toBe(0o700);
    expect(await local.list('')).toEqual(['a']);
    const lockOnly = new FileStore({ directory: join(root, 'locks', 'first') });
    expect(await lockOnly.tryLock('l')).toMatchObject({ token: 1 });
    await local.close();
    await lockOnly.close();
  });

  it('temp files never show up, and keys that would collide with them are refused', async () => {
    const directory = join(root, 'store');
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`t/k${i % 3}`, `value ${i}`)));
    expect((await store.list('')).sort()).toEqual(['t/k0', 't/k1', 't/k2']);
    // A crash between create and rename leaves a temp file behind; it must stay invisible.
    await writeFile(join(directory, 't', '.tmp-crashed'), 'half a valu');
    await writeFile(join(directory, '.tmp-crashed'), 'half a valu');
    expect((await store.list('')).sort()).toEqual(['t/k0', 't/k1', 't/k2']);
    expect((await tree(directory)).filter((e) => e.includes('.tmp-')).sort()).toEqual([
      '.tmp-crashed',
      't/.tmp-crashed',
    ]);
    for (const key of ['.tmp-crashed', 't/.tmp-crashed', '.locks', '.locks/x/0000000000000001']) {
      await expect(store.get(key)).rejects.toMatchObject({ code: 'INVALID_STORE_KEY' });
      await expect(store.put(key, 'x')).rejects.toMatchObject({ code: 'INVALID_STORE_KEY' });
    }
    await store.tryLock('a-lock');
    expect((await store.list('')).sort()).toEqual(['t/k0', 't/k1', 't/k2']);
  });

  it('a directory or FIFO where a value should be is STORE_CORRUPT, without hanging', async () => {
    const directory = join(root, 'store');
    await store.put('a/b', 'v');
    await expect(store.get('a')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    await expect(store.stat('a')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    await expect(store.delete('a')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    execFileSync('mkfifo', [join(directory, 'fifo')]);
    await expect(store.get('fifo')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
    expect(await store.list('')).toEqual(['a/b']);
  });

  it('a key below an existing value fails with STORE_IO naming the key and errno', async () => {
    await store.put('a', 'v');
    await expect(store.put('a/b', 'v')).rejects.toMatchObject({
      code: 'STORE_IO',
      message: expect.stringMatching(/"a\/b".*ENOTDIR|ENOTDIR.*"a\/b"/),
    });
    expect(await store.get('a/b')).toBeNull();
  });

  it('delete removes directories it empties, up to the root', async () => {
    const directory = join(root, 'store');
    await store.put('x/y/z', '1');
    await store.put('x/keep', '2');
    await store.delete('x/y/z');
    expect((await tree(directory)).sort()).toEqual(['x/', 'x/keep']);
    await store.delete('x/keep');
    expect(await tree(directory)).toEqual([]);
    await store.put('x/y/z', '3');
    expect(await store.list('x')).toEqual(['x/y/z']);
  });

  describe('lock tickets', () => {
    const ticketDir = (name: string) => join(root, 'store', '.locks', encodeURIComponent(name));

    it('a garbage ticket holds the lock for one default TTL by mtime, then is taken over', async () => {
      await mkdir(ticketDir('garbled'), { recursive: true });
      const ticket = join(ticketDir('garbled'), '0000000000000005');
      await writeFile(ticket, 'not json {');
      await writeFile(join(ticketDir('garbled'), 'README'), 'junk that is not a ticket');
      expect(await store.tryLock('garbled')).toBeNull();
      const old = new Date(Date.now() - 31_000);
      await utimes(ticket, old, old);
      const lease = await store.tryLock('garbled');
      expect(lease?.token).toBe(6);
      // The holder's ticket and its write slot (fenced writes go through it); the junk stays.
      expect((await readdir(ticketDir('garbled'))).sort()).toEqual([
        '0000000000000006',
        'README',
        'w0000000000000006',
      ]);
      expect(await store.unlock(lease!)).toBe(true);
    });

    it('files or links planted under write-slot names neither wedge the lock nor redirect fenced writes', async () => {
      const outside = join(root, 'outside');
      await mkdir(outside, { mode: 0o755 });
      const first = (await store.tryLock('planted'))!;
      await store.unlock(first);
      // Junk where the old slot is, and where the next winner's slot will be made.
      await rm(join(ticketDir('planted'), 'w0000000000000001'), { recursive: true });
      await writeFile(join(ticketDir('planted'), 'w0000000000000001'), 'junk');
      await symlink(outside, join(ticketDir('planted'), 'w0000000000000002'));
      const lease = await store.tryLock('planted');
      expect(lease?.token).toBe(2);
      await store.put('fenced/value', 'v', { fence: lease! });
      expect(new TextDecoder().decode((await store.get('fenced/value'))!)).toBe('v');
      expect((await readdir(ticketDir('planted'))).sort()).toEqual(['0000000000000002', 'w0000000000000002']);
      expect((await lstat(join(ticketDir('planted'), 'w0000000000000002'))).isDirectory()).toBe(true);
      expect(await readdir(outside)).toEqual([]);
      expect((await stat(outside)).mode & 0o777).toBe(0o755);
      await store.unlock(lease!);
    });

    it('a ticket with valid JSON but the wrong shape counts as garbage too', async () => {
      await mkdir(ticketDir('shape'), { recursive: true });
      await writeFile(join(ticketDir('shape'), '0000000000000002'), JSON.stringify({ token: 7, owner: 1 }));
      expect(await store.tryLock('shape')).toBeNull();
    });

    it('release keeps the highest ticket, so tokens survive a restart of every client', async () => {
      const a = (await store.tryLock('keep'))!;
      await store.unlock(a);
      // Its write slot waits for the next winner, who renames it away before its lease exists.
      expect((await readdir(ticketDir('keep'))).sort()).toEqual(['0000000000000001', 'w0000000000000001']);
      const fresh = new FileStore({ directory: join(root, 'store') });
      expect((await fresh.tryLock('keep'))?.token).toBe(2);
      expect((await readdir(ticketDir('keep'))).sort()).toEqual(['0000000000000002', 'w0000000000000002']);
      await fresh.close();
    });

    it('lock names with slashes, long names and digit-only segments do not collide', async () => {
      const names = [
        'a',
        'a/b',
        'a/0000000000000001',
        'x'.repeat(150).concat('/', 'y'.repeat(150)),
        'ünï code',
      ];
      const leases = await Promise.all(names.map((name) => store.tryLock(name)));
      expect(leases.map((lease) => lease?.token)).toEqual(names.map(() => 1));
      for (const lease of leases) expect(await store.unlock(lease!)).toBe(true);
      expect((await store.tryLock('a'))?.token).toBe(2);
    });
  });
});

describe('FileStore on a full or read-only file system (tmpfs)', () => {
  let fs: Tmpfs | null = null;
  let store: FileStore | undefined;

  afterEach(async () => {
    await store?.close();
    store = undefined;
    fs?.unmount();
    fs = null;
  });

  it('a put that runs out of space fails with STORE_NO_SPACE and keeps the old value', async (context) => {
    fs = mountTmpfs(64);
    if (!fs) return context.skip('tmpfs unavailable');
    const directory = join(fs.dir, 'store');
    store = new FileStore({ directory });
    await store.put('certificates/a/cert.pem', 'the old value');
    const huge = `VALUE-MARKER-${'x'.repeat(200 * 1024)}`;
    const error = await store.put('certificates/a/cert.pem', huge).catch((err: unknown) => err);
    expect(error).toMatchObject({
      code: 'STORE_NO_SPACE',
      details: { key: 'certificates/a/cert.pem', errno: 'ENOSPC' },
    });
    const message = (error as Error).message;
    expect(message).toContain('certificates/a/cert.pem');
    expect(message).toContain('ENOSPC');
    expect(message).not.toContain('VALUE-MARKER');
    expect(new TextDecoder().decode((await store.get('certificates/a/cert.pem'))!)).toBe('the old value');
    expect((await tree(directory)).filter((e) => e.includes('.tmp-'))).toEqual([]);
    // Space came back with the temp file: the store keeps working.
    await store.put('certificates/a/cert.pem', 'a new small value');
    expect(new TextDecoder().decode((await store.get('certificates/a/cert.pem'))!)).toBe('a new small value');
  });

  it('writes on a read-only mount fail with STORE_READ_ONLY; reads keep working', async (context) => {
    fs = mountTmpfs(256);
    if (!fs) return context.skip('tmpfs unavailable');
    store = new FileStore({ directory: join(fs.dir, 'store') });
    await store.put('k', 'old');
    await store.tryLock('held');
    fs.readOnly();
    try {
      await expect(store.put('k', 'new')).rejects.toMatchObject({
        code: 'STORE_READ_ONLY',
        details: { errno: 'EROFS' },
      });
      await expect(store.put('other/k', 'new')).rejects.toMatchObject({ code: 'STORE_READ_ONLY' });
      await expect(store.tryLock('l')).rejects.toMatchObject({ code: 'STORE_READ_ONLY' });
      expect(new TextDecoder().decode((await store.get('k'))!)).toBe('old');
      expect(await store.list('')).toEqual(['k']);
    } finally {
      fs.readWrite();
    }
    await store.put('k', 'new');
    expect(new TextDecoder().decode((await store.get('k'))!)).toBe('new');
  });
});
