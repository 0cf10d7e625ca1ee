// Certificates another tool writes, read from real files: a pair is taken only when the key is
// the leaf's and the chain valid (a half-written pair, a new chain with the old key, never); the
// watch notices certbot's live/ symlinks and a Kubernetes secret's ..data symlink swap, names the
// files, and reports nothing when nothing changed.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { readPair } from '../../src/sources/file-pair.js';
import { FileWatch, type FileWatchEvents } from '../../src/sources/file-source.js';
import { makeIntermediate, makeLeaf, makeRoot } from '../support/pki.js';

type Pki = { chainPem: string; keyPem: string; fingerprint: string; serial: string };

let dir: string;
let pairs: Pki[];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'certkeeper-files-'));
  const root = await makeRoot();
  const intermediate = await makeIntermediate(root);
  pairs = [];
  for (let i = 0; i < 3; i++) {
    const leaf = await makeLeaf(intermediate, { names: ['files.test'] });
    pairs.push({
      chainPem: leaf.certificate.pem + intermediate.certificate.pem,
      keyPem: leaf.key.toPem(),
      fingerprint: leaf.certificate.info.fingerprint256,
      serial: leaf.certificate.info.serialNumber,
    });
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<CertkeeperError> {
  const error = await promise.then(
    () => {
      throw new Error('accepted');
    },
    (e) => e,
  );
  expect(error).toBeInstanceOf(CertkeeperError);
  return error as CertkeeperError;
}

function collect(watch: FileWatch) {
  const events: { type: keyof FileWatchEvents; event: Record<string, unknown> }[] = [];
  watch.on('changed', (event) => events.push({ type: 'changed', event }));
  watch.on('pending', (event) => events.push({ type: 'pending', event }));
  return events;
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}`);
}

describe('readPair', () => {
  it('takes a whole, matching, valid pair', async () => {
    const d = join(dir, 'pair');
    mkdirSync(d);
    const files = { chain: join(d, 'fullchain.pem'), key: join(d, 'privkey.pem') };
    writeFileSync(files.chain, pairs[0]!.chainPem);
    writeFileSync(files.key, pairs[0]!.keyPem);
    const pair = await readPair(files, Date.now());
    expect(pair).toMatchObject({ fingerprint256: pairs[0]!.fingerprint, serial: pairs[0]!.serial });
    expect(pair.chainPem).toBe(pairs[0]!.chainPem);

    // A new chain beside the old key: the writer is half-way.
    writeFileSync(files.chain, pairs[1]!.chainPem);
    const mismatch = await refusal(readPair(files, Date.now()));
    expect(mismatch.code).toBe('ISSUER_UNAVAILABLE');
    expect(mismatch.details).toMatchObject({
      chainFile: files.chain,
      keyFile: files.key,
      problem: 'KEY_MISMATCH',
      retryable: true,
    });
    // A file cut short.
    writeFileSync(files.key, pairs[1]!.keyPem.slice(0, 100));
    const cut = await refusal(readPair(files, Date.now()));
    expect(cut.details.problem).toBe('MALFORMED_PEM');
    expect(cut.message).not.toContain(pairs[1]!.keyPem.slice(40, 90));
    writeFileSync(files.chain, pairs[1]!.chainPem.slice(0, pairs[1]!.chainPem.length / 2));
    writeFileSync(files.key, pairs[1]!.keyPem);
    expect((await refusal(readPair(files, Date.now()))).code).toBe('ISSUER_UNAVAILABLE');
    // Expired by the clock given: not a pair to serve.
    writeFileSync(files.chain, pairs[1]!.chainPem);
    expect((await refusal(readPair(files, Date.now() + 30 * 86_400_000))).details.problem).toBe('EXPIRED');
    expect((await readPair(files, Date.now())).fingerprint256).toBe(pairs[1]!.fingerprint);
    unlinkSync(files.key);
    expect((await refusal(readPair(files, Date.now()))).message).toMatch(
      /cannot read .*privkey\.pem \(ENOENT\)/,
    );
  });
});

describe('FileWatch', () => {
  it('a rewrite of the same files reports nothing; a new pair is reported once, after both files are written', async () => {
    const d = join(dir, 'plain');
    mkdirSync(d);
    const files = { chain: join(d, 'tls.crt'), key: join(d, 'tls.key') };
    writeFileSync(files.chain, pairs[0]!.chainPem);
    writeFileSync(files.key, pairs[0]!.keyPem);
    const watch = new FileWatch('plain', files, { pollIntervalMs: 100, settleMs: 20 });
    const events = collect(watch);
    expect((await watch.start())?.fingerprint256).toBe(pairs[0]!.fingerprint);
    try {
      writeFileSync(files.chain, pairs[0]!.chainPem);
      writeFileSync(files.key, pairs[0]!.keyPem);
      await watch.check();
      await new Promise((r) => setTimeout(r, 400));
      expect(events).toEqual([]);
      // The chain first: the watch sees a new chain with the old key and waits.
      writeFileSync(files.chain, pairs[1]!.chainPem);
      await watch.check();
      expect(events.filter((e) => e.type === 'changed')).toEqual([]);
      expect(events.at(-1)).toEqual({
        type: 'pending',
        event: {
          id: 'plain',
          code: 'ISSUER_UNAVAILABLE',
          problem: 'KEY_MISMATCH',
          chainFile: files.chain,
          keyFile: files.key,
        },
      });
      writeFileSync(files.key, pairs[1]!.keyPem);
      await eventually(() => events.some((e) => e.type === 'changed'), 'the change');
      await new Promise((r) => setTimeout(r, 400));
      const changed = events.filter((e) => e.type === 'changed');
      expect(changed).toEqual([
        {
          type: 'changed',
          event: expect.objectContaining({
            id: 'plain',
            serial: pairs[1]!.serial,
            fingerprint256: pairs[1]!.fingerprint,
            chainFile: files.chain,
            keyFile: files.key,
          }),
        },
      ]);
      // The mismatch was reported once, however many polls saw it. (A poll that lands inside the
      // key's own write sees a truncated key: a different problem, reported on its own.)
      const mismatches = events.filter(
        (e) => e.type === 'pending' && (e.event as { problem?: string }).problem === 'KEY_MISMATCH',
      );
      expect(mismatches).toHaveLength(1);
    } finally {
      watch.close();
    }
  });

  it('a Kubernetes secret volume: the ..data symlink swapped to a new timestamped directory', async () => {
    const d = join(dir, 'k8s');
    mkdirSync(d);
    const version = (name: string, p: Pki) => {
      mkdirSync(join(d, name));
      writeFileSync(join(d, name, 'tls.crt'), p.chainPem);
      writeFileSync(join(d, name, 'tls.key'), p.keyPem);
    };
    version('..2026_12_03_a', pairs[0]!);
    symlinkSync('..2026_12_03_a', join(d, '..data'));
    symlinkSync('..data/tls.crt', join(d, 'tls.crt'));
    symlinkSync('..data/tls.key', join(d, 'tls.key'));
    // Polling far apart: the directory notification of the swap is what finds it.
    const watch = new FileWatch(
      'k8s',
      { chain: join(d, 'tls.crt'), key: join(d, 'tls.key') },
      { pollIntervalMs: 60_000, settleMs: 20 },
    );
    const events = collect(watch);
    await watch.start();
    try {
      version('..2026_12_03_b', pairs[2]!);
      symlinkSync('..2026_12_03_b', join(d, '..data_tmp'));
      renameSync(join(d, '..data_tmp'), join(d, '..data'));
      await eventually(() => events.some((e) => e.type === 'changed'), 'the swap');
      expect(events).toEqual([
        {
          type: 'changed',
          event: expect.objectContaining({ serial: pairs[2]!.serial, chainFile: join(d, 'tls.crt') }),
        },
      ]);
    } finally {
      watch.close();
    }
  });

  it("certbot's live/ symlinks moved to the next archive files, one at a time", async () => {
    const archive = join(dir, 'certbot/archive/site');
    const live = join(dir, 'certbot/live/site');
    mkdirSync(archive, { recursive: true });
    mkdirSync(live, { recursive: true });
    pairs.slice(0, 2).forEach((p, i) => {
      writeFileSync(join(archive, `fullchain${i + 1}.pem`), p.chainPem);
      writeFileSync(join(archive, `privkey${i + 1}.pem`), p.keyPem);
    });
    const link = (name: string, n: number) => {
      const at = join(live, `${name}.pem`);
      rmSync(at, { force: true });
      symlinkSync(`../../archive/site/${name}${n}.pem`, at);
    };
    link('fullchain', 1);
    link('privkey', 1);
    const watch = new FileWatch(
      'site',
      { chain: join(live, 'fullchain.pem'), key: join(live, 'privkey.pem') },
      { pollIntervalMs: 100, settleMs: 20 },
    );
    const events = collect(watch);
    await watch.start();
    try {
      link('fullchain', 2);
      await watch.check();
      expect(events.some((e) => e.type === 'changed')).toBe(false);
      link('privkey', 2);
      await eventually(() => events.some((e) => e.type === 'changed'), 'the renewal');
      expect(events.filter((e) => e.type === 'changed').map((e) => e.event.serial)).toEqual([
        pairs[1]!.serial,
      ]);
    } finally {
      watch.close();
    }
  });
});
