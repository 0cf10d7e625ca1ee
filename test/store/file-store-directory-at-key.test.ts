// A directory planted where a FileStore value should be (issue 13 item 6) is damage the store
// reports as such (STORE_CORRUPT, not a disk error), and an empty one can be deleted like the key
// it stands in for, so the value can be written again.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function store() {
  const dir = mkdtempSync(join(tmpdir(), 'ck-dir-at-key-'));
  dirs.push(dir);
  return { store: new FileStore({ directory: dir }), dir };
}

it('reading or writing a key that is an empty directory is STORE_CORRUPT; deleting it frees the key', async () => {
  const { store: s, dir } = store();
  mkdirSync(join(dir, 'a'), { recursive: true });
  mkdirSync(join(dir, 'a', 'current.json'));
  await expect(s.get('a/current.json')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  await expect(s.put('a/current.json', '{}')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  expect(await s.delete('a/current.json')).toBe(false);
  await s.put('a/current.json', '{}');
  expect(new TextDecoder().decode((await s.get('a/current.json'))!)).toBe('{}');
});

it('a directory with files in it is not removed by deleting the key', async () => {
  const { store: s, dir } = store();
  mkdirSync(join(dir, 'a', 'current.json'), { recursive: true });
  writeFileSync(join(dir, 'a', 'current.json', 'x'), 'x');
  await expect(s.delete('a/current.json')).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  expect(await s.list('a/current.json')).toEqual(['a/current.json/x']);
});
