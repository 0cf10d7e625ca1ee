// FileStore never trusts a directory it cannot call its own: an existing store directory owned
// by another user, writable by group or others, or below a directory another user can write, is
// refused with STORE_UNSAFE before anything in it is read; and no value is ever read through a
// symbolic link. The tests run as root, so they can hand directories to another uid.
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';

const OTHER_UID = 4242;
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIBplanted\n-----END CERTIFICATE-----\n';
const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

describe('FileStore refuses a directory it cannot trust', () => {
  let root: string;
  const stores: FileStore[] = [];
  const open = (directory: string) => {
    const store = new FileStore({ directory });
    stores.push(store);
    return store;
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'certkeeper-dir-'));
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Another local user pre-created the store directory and put their own CA in it. */
  async function planted(mode: number, uid: number): Promise<string> {
    const directory = join(root, '.certkeeper');
    await mkdir(join(directory, 'ca', 'internal'), { recursive: true });
    await writeFile(join(directory, 'ca', 'internal', 'root.pem'), CA_PEM);
    await chown(directory, uid, uid);
    await chmod(directory, mode);
    return directory;
  }

  async function refusedEverywhere(store: FileStore, reason: string): Promise<void> {
    const expected = { code: 'STORE_UNSAFE', details: expect.objectContaining({ reason }) };
    await expect(store.get('ca/internal/root.pem')).rejects.toMatchObject(expected);
    await expect(store.stat('ca/internal/root.pem')).rejects.toMatchObject(expected);
    await expect(store.list('ca')).rejects.toMatchObject(expected);
    await expect(store.put('certificates/internal/a.example/current.json', '{}')).rejects.toMatchObject(
      expected,
    );
    await expect(store.delete('ca/internal/root.pem')).rejects.toMatchObject(expected);
    await expect(store.tryLock('issue/a.example')).rejects.toMatchObject(expected);
  }

  it('refuses an existing directory owned by another user, before reading anything in it', async () => {
    const directory = await planted(0o700, OTHER_UID);
    const store = open(directory);
    await refusedEverywhere(store, 'owner');
    const error = await store.get('ca/internal/root.pem').catch((err: unknown) => err);
    expect(error).toMatchObject({ details: { directory, uid: OTHER_UID } });
    expect((error as Error).message).toMatch(/owned by uid 4242/);
    // Nothing was written into the foreign directory either.
    expect((await stat(join(directory, 'ca', 'internal', 'root.pem'))).uid).toBe(0);
    await expect(stat(join(directory, 'certificates'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a directory of its own that group or others may write (0777, 0770, 0702)', async () => {
    for (const mode of [0o777, 0o770, 0o702]) {
      const directory = await planted(mode, process.geteuid!());
      await refusedEverywhere(open(directory), 'writable');
      expect((await stat(directory)).mode & 0o777, 'the mode is reported, not changed').toBe(mode);
      await rm(directory, { recursive: true });
    }
  });

  it('refuses a directory below one that another user may write, but accepts a sticky /tmp-like one', async () => {
    const parent = join(root, 'parent');
    await mkdir(parent);
    const directory = join(parent, 'store');
    await mkdir(directory, { mode: 0o700 });
    await chown(parent, OTHER_UID, OTHER_UID);
    // The other user owns the parent: they can rename our directory away and put theirs there.
    await refusedEverywhere(open(directory), 'ancestor');
    await chown(parent, 0, 0);
    await chmod(parent, 0o777);
    await refusedEverywhere(open(directory), 'ancestor');
    // World-writable with the sticky bit (like /tmp): nobody else can rename or remove our entry.
    await chmod(parent, 0o1777);
    const store = open(directory);
    await store.put('k', 'v');
    expect(text(await store.get('k'))).toBe('v');
  });

  it('re-checks a directory that appears later, after reads from a missing one', async () => {
    const directory = join(root, 'later');
    const store = open(directory);
    expect(await store.get('ca/internal/root.pem')).toBeNull();
    await planted(0o700, OTHER_UID).then(() => {}); // creates root/.certkeeper, not "later"
    await mkdir(directory, { mode: 0o700 });
    await writeFile(join(directory, 'k'), 'planted');
    await chown(directory, OTHER_UID, OTHER_UID);
    await expect(store.get('k')).rejects.toMatchObject({ code: 'STORE_UNSAFE' });
  });

  it('uses a directory it creates, and an existing one of its own that others may only read', async () => {
    const created = open(join(root, 'new', 'store'));
    await created.put('k', 'v');
    expect((await stat(join(root, 'new', 'store'))).mode & 0o777).toBe(0o700);
    const readable = join(root, 'readable');
    await mkdir(readable);
    await chmod(readable, 0o755);
    const store = open(readable);
    await store.put('k', 'v');
    expect(text(await store.get('k'))).toBe('v');
    expect((await stat(readable)).mode & 0o777, 'an existing root keeps its mode').toBe(0o755);
  });

  it('a store directory given as a symbolic link is checked where it points', async () => {
    const foreign = await planted(0o700, OTHER_UID);
    const link = join(root, 'link');
    await symlink(foreign, link);
    await refusedEverywhere(open(link), 'owner');
    const own = join(root, 'own');
    await mkdir(own, { mode: 0o700 });
    const viaLink = join(root, 'own-link');
    await symlink(own, viaLink);
    const store = open(viaLink);
    await store.put('k', 'v');
    expect(await readFile(join(own, 'k'), 'utf8')).toBe('v');
  });
});

describe('FileStore never follows a symbolic link at a key', () => {
  let root: string;
  let store: FileStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'certkeeper-link-'));
    store = new FileStore({ directory: join(root, 'store') });
    await store.put('certificates/internal/a.example/01/cert.pem', 'mine');
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a planted link is STORE_CORRUPT for get and stat, skipped by list, replaced (not followed) by put', async () => {
    const outside = join(root, 'outside.pem');
    await writeFile(outside, CA_PEM);
    const key = 'certificates/internal/a.example/01/key.pem';
    await symlink(outside, join(root, 'store', key));
    const corrupt = { code: 'STORE_CORRUPT', details: expect.objectContaining({ key, reason: 'symlink' }) };
    await expect(store.get(key)).rejects.toMatchObject(corrupt);
    await expect(store.stat(key)).rejects.toMatchObject(corrupt);
    expect(await store.list('certificates')).toEqual(['certificates/internal/a.example/01/cert.pem']);
    await store.put(key, 'written');
    expect(await readFile(outside, 'utf8'), 'the link target was written through').toBe(CA_PEM);
    expect(text(await store.get(key))).toBe('written');
    // delete removes a link itself, never its target.
    await symlink(outside, join(root, 'store', 'ca-link'));
    expect(await store.delete('ca-link')).toBe(true);
    expect(await readFile(outside, 'utf8')).toBe(CA_PEM);
  });

  it('a link to a directory is neither listed into nor read or written through', async () => {
    const elsewhere = join(root, 'elsewhere');
    await mkdir(join(elsewhere, 'x'), { recursive: true });
    await writeFile(join(elsewhere, 'x', 'root.pem'), CA_PEM);
    await symlink(elsewhere, join(root, 'store', 'ca'));
    expect(await store.list('')).toEqual(['certificates/internal/a.example/01/cert.pem']);
    expect(await store.list('ca')).toEqual([]);
    const corrupt = { code: 'STORE_CORRUPT', details: expect.objectContaining({ reason: 'symlink' }) };
    await expect(store.get('ca/x/root.pem')).rejects.toMatchObject(corrupt);
    await expect(store.stat('ca/x/root.pem')).rejects.toMatchObject(corrupt);
    await expect(store.put('ca/x/intermediate.pem', 'v')).rejects.toMatchObject(corrupt);
    await expect(stat(join(elsewhere, 'x', 'intermediate.pem'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
