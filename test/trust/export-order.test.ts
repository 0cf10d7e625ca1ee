// The exported bundle file has one writer at a time. `exportPem(path)` used to write beside the
// background export started by a change (start() makes one), so when it resolved the other write
// could still be under way: a `.tmp-` file in the directory (the flaky "exports the bundle
// atomically" test), and an older bundle renamed over the file after the newer one. The
// background write is held at its start, exactly while the explicit export is asked for.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import type { TrustBundle } from '../../src/trust/bundle.js';

const hook = vi.hoisted(() => ({
  hold: undefined as Promise<void> | undefined,
  active: 0,
  most: 0,
}));

vi.mock('../../src/trust/export.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/trust/export.js')>();
  return {
    ...real,
    writeBundleFile: async (path: string, bundle: TrustBundle, mode?: number) => {
      hook.active++;
      hook.most = Math.max(hook.most, hook.active);
      try {
        const hold = hook.hold;
        hook.hold = undefined;
        await hold;
        await real.writeBundleFile(path, bundle, mode);
      } finally {
        hook.active--;
      }
    },
  };
});

const { TrustStore } = await import('../../src/trust/trust-store.js');
const { makeRoot } = await import('../support/pki.js');
const { MutableSource } = await import('./support.js');

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

it('exportPem waits for the background export: when it resolves the file holds the current bundle, alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-order-'));
  dirs.push(dir);
  const path = join(dir, 'ca-bundle.pem');
  const [a, b] = [await makeRoot('A'), await makeRoot('B')];
  const source = new MutableSource('s', [a.certificate.pem]);
  const store = new TrustStore({ sources: [source], exportPath: path });
  let release!: () => void;
  hook.hold = new Promise<void>((resolve) => {
    release = resolve;
  });
  await store.start(); // its background export of bundle 1 is held
  source.pems = [a.certificate.pem, b.certificate.pem];
  await store.refresh(); // bundle 2, while bundle 1 is still to be written
  const explicit = store.exportPem(path);
  release();
  await explicit;
  expect(hook.most).toBe(1);
  expect(readdirSync(dir)).toEqual(['ca-bundle.pem']);
  expect(readFileSync(path, 'utf8').split('BEGIN CERTIFICATE')).toHaveLength(3);
  await store.stop();
  expect(readFileSync(path, 'utf8').split('BEGIN CERTIFICATE')).toHaveLength(3);
});
