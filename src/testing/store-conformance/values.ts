/**
 * Values and listing: what `get`, `put`, `delete`, `list` and `stat` promise (see "Keys",
 * "Values", "Not found", "Atomicity" and "Listing" in `store/store.ts`).
 */
import { type Kit, LONG, sameBytes, text } from './kit.js';

/** A value that says what it should be: `writer:round:size\n` then one repeated byte. */
function framed(writer: number, round: number, size: number): Uint8Array {
  const header = new TextEncoder().encode(`${writer}:${round}:${size}\n`);
  const bytes = new Uint8Array(size).fill((writer * 31 + round * 7) % 256);
  bytes.set(header);
  return bytes;
}

function isWhole(bytes: Uint8Array | null): boolean {
  if (bytes === null) return false;
  const newline = bytes.indexOf(10);
  const match = /^(\d+):(\d+):(\d+)$/.exec(new TextDecoder().decode(bytes.subarray(0, newline)));
  if (newline < 0 || !match) return false;
  const [writer, round, size] = match.slice(1).map(Number) as [number, number, number];
  return sameBytes(bytes, framed(writer, round, size));
}

/** The hostile keys every method must refuse with INVALID_STORE_KEY. */
const HOSTILE_KEYS: readonly string[] = [
  '',
  '../x',
  'a/../../x',
  '/abs',
  'a//b',
  'a/',
  '.',
  '..',
  'a/./b',
  'a\\b',
  'a\0b',
  'a\nb',
  'a\u001bb',
  'x'.repeat(201),
  'a/'.repeat(600).concat('a'),
];

export function valueTests({ test, expect, sut, rejectsWith }: Kit): void {
  test('get and stat of a missing key return null, not an error', async () => {
    expect(await sut().store.get('missing/key')).toBeNull();
    expect(await sut().store.stat('missing/key')).toBeNull();
  });

  test('put then get returns the same bytes as a Uint8Array', async () => {
    const value = new Uint8Array([1, 2, 3, 250, 0, 7]);
    await sut().store.put('certificates/a/cert.pem', value);
    const got = await sut().store.get('certificates/a/cert.pem');
    expect(got).toBeInstanceOf(Uint8Array);
    expect(sameBytes(got, value)).toBe(true);
  });

  test('put of a string stores its UTF-8 encoding', async () => {
    const value = 'naïve ☃ 🔐 -----BEGIN CERTIFICATE-----\n';
    await sut().store.put('s', value);
    const got = await sut().store.get('s');
    expect(sameBytes(got, new TextEncoder().encode(value))).toBe(true);
    expect(text(got)).toBe(value);
  });

  test('an empty value round-trips and is not "missing"', async () => {
    await sut().store.put('empty', new Uint8Array(0));
    const got = await sut().store.get('empty');
    expect(got).not.toBeNull();
    expect(got!.byteLength).toBe(0);
    expect((await sut().store.stat('empty'))?.size).toBe(0);
    await sut().store.put('empty-string', '');
    expect((await sut().store.get('empty-string'))?.byteLength).toBe(0);
  });

  test('a 1 MiB value round-trips intact', async () => {
    const value = new Uint8Array(1024 * 1024);
    for (let i = 0; i < value.length; i++) value[i] = (i * 7919) % 251;
    await sut().store.put('big', value);
    expect(sameBytes(await sut().store.get('big'), value)).toBe(true);
  });

  test('binary values with all 256 byte values round-trip', async () => {
    const value = new Uint8Array(512).map((_, i) => i % 256);
    await sut().store.put('binary', value);
    expect(sameBytes(await sut().store.get('binary'), value)).toBe(true);
  });

  test('put overwrites the previous value', async () => {
    await sut().store.put('k', 'first value, the longer one');
    await sut().store.put('k', 'second');
    expect(text(await sut().store.get('k'))).toBe('second');
    expect((await sut().store.stat('k'))?.size).toBe(6);
  });

  test('stored bytes are copies: mutating the input or the result changes nothing', async () => {
    const input = new Uint8Array([1, 2, 3]);
    await sut().store.put('copy', input);
    input[0] = 99;
    const first = await sut().store.get('copy');
    expect(Array.from(first!)).toEqual([1, 2, 3]);
    first![1] = 99;
    expect(Array.from((await sut().store.get('copy'))!)).toEqual([1, 2, 3]);
  });

  test('stat reports key, size in bytes and modification time', async () => {
    const before = Date.now();
    await sut().store.put('dir/stat', 'héllo'); // 6 bytes in UTF-8
    const info = await sut().store.stat('dir/stat');
    expect(info).not.toBeNull();
    expect(info!.key).toBe('dir/stat');
    expect(info!.size).toBe(6);
    expect(info!.modified).toBeInstanceOf(Date);
    // Generous bounds: backends may use their own clock or coarse timestamps.
    expect(info!.modified.getTime()).toBeGreaterThan(before - 5_000);
    expect(info!.modified.getTime()).toBeLessThan(Date.now() + 5_000);
  });

  test('delete returns true for an existing key, then false', async () => {
    await sut().store.put('gone/soon', 'x');
    expect(await sut().store.delete('gone/soon')).toBe(true);
    expect(await sut().store.get('gone/soon')).toBeNull();
    expect(await sut().store.stat('gone/soon')).toBeNull();
    expect(await sut().store.delete('gone/soon')).toBe(false);
    expect(await sut().store.delete('never/existed')).toBe(false);
  });

  // ---- listing ------------------------------------------------------------------------------

  test('list matches the prefix segment-wise: "a" never lists "ab/..."', async () => {
    await sut().store.put('p/a/x', '1');
    await sut().store.put('p/ab/x', '2');
    await sut().store.put('p/a-b', '3');
    expect((await sut().store.list('p/a')).sort()).toEqual(['p/a/x']);
    expect((await sut().store.list('p/ab')).sort()).toEqual(['p/ab/x']);
    expect((await sut().store.list('p')).sort()).toEqual(['p/a-b', 'p/a/x', 'p/ab/x']);
  });

  test('list returns keys at every depth; an empty prefix lists everything', async () => {
    const keys = ['top', 'c/i/n/cert.pem', 'c/i/n/key.pem', 'c/i/m/cert.pem', 'c/j/n/deep/er/still'];
    for (const key of keys) await sut().store.put(key, key);
    expect((await sut().store.list('')).sort()).toEqual([...keys].sort());
    expect((await sut().store.list('c/i')).sort()).toEqual([
      'c/i/m/cert.pem',
      'c/i/n/cert.pem',
      'c/i/n/key.pem',
    ]);
    expect((await sut().store.list('c/i/n/cert.pem')).sort()).toEqual(['c/i/n/cert.pem']);
  });

  test('list of a prefix with no keys is empty', async () => {
    expect(await sut().store.list('')).toEqual([]);
    await sut().store.put('some/key', 'v');
    expect(await sut().store.list('other')).toEqual([]);
    expect(await sut().store.list('some/key/below')).toEqual([]);
  });

  test('deleted keys disappear from list', async () => {
    await sut().store.put('l/one', '1');
    await sut().store.put('l/two', '2');
    await sut().store.delete('l/one');
    expect(await sut().store.list('l')).toEqual(['l/two']);
    await sut().store.delete('l/two');
    expect(await sut().store.list('l')).toEqual([]);
    expect(await sut().store.list('')).toEqual([]);
  });

  test('hostile keys are refused with INVALID_STORE_KEY by every method', async () => {
    for (const key of HOSTILE_KEYS) {
      await rejectsWith(() => sut().store.get(key), 'INVALID_STORE_KEY');
      await rejectsWith(() => sut().store.put(key, 'x'), 'INVALID_STORE_KEY');
      await rejectsWith(() => sut().store.delete(key), 'INVALID_STORE_KEY');
      await rejectsWith(() => sut().store.stat(key), 'INVALID_STORE_KEY');
      if (key !== '') await rejectsWith(() => sut().store.list(key), 'INVALID_STORE_KEY');
      await rejectsWith(() => sut().store.tryLock(key, { ttlMs: LONG }), 'INVALID_STORE_KEY');
      await rejectsWith(() => sut().store.lock(key, { ttlMs: LONG }), 'INVALID_STORE_KEY');
    }
    expect(await sut().store.list('')).toEqual([]);
  });

  test('concurrent writers and readers of one key never see a torn value', async () => {
    await sut().store.put('torn', framed(0, 0, 1000));
    let writing = true;
    let reads = 0;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let round = 1; round <= 8; round++) {
        await sut().store.put('torn', framed(w + 1, round, 20_000 + ((w * 8 + round) % 7) * 30_000));
      }
    });
    const readers = Array.from({ length: 3 }, async () => {
      while (writing) {
        const value = await sut().store.get('torn');
        reads++;
        expect(isWhole(value), 'a read returned a torn or mixed value').toBe(true);
      }
    });
    await Promise.all(writers).finally(() => {
      writing = false;
    });
    await Promise.all(readers);
    expect(reads).toBeGreaterThan(0);
    expect(isWhole(await sut().store.get('torn'))).toBe(true);
  });
}
