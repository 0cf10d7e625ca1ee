// The file set: layout, modes, owner, pruning, restore, and the atomicity claim of the ..data flip
// (a reader in another thread never sees a certificate with another version's key).
import { X509Certificate } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { fileTarget } from '../../../src/deploy/file-target.js';
import { testCa } from '../../support/peers/generations.js';
import { removeTempDirs, tempDir } from '../../support/peers/process.js';

afterEach(removeTempDirs);
const ca = testCa('files');
const signal = new AbortController().signal;

describe('file set', () => {
  it('writes the certbot files plus combined and trust, keys 0600, through stable links into ..data', async () => {
    const dir = join(tempDir('set'), 'web');
    const root = await ca.rootPem();
    const target = fileTarget({ ids: ['web'], dir, files: { combined: true, trust: { pem: root } } });
    const generation = await ca.issue();
    await target.apply('web', generation, signal);
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    expect(new X509Certificate(read('cert.pem')).fingerprint256.replaceAll(':', '').toLowerCase()).toBe(
      generation.info.fingerprint256,
    );
    expect(read('fullchain.pem')).toBe(read('cert.pem') + read('chain.pem'));
    expect(read('chain.pem')).toContain('BEGIN CERTIFICATE');
    expect(read('privkey.pem')).toBe(generation.key.toPem());
    expect(read('combined.pem')).toBe(read('fullchain.pem') + read('privkey.pem'));
    expect(read('trust.pem').trim()).toBe(root.trim());
    for (const name of ['privkey.pem', 'combined.pem'])
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    for (const name of ['cert.pem', 'fullchain.pem', 'chain.pem'])
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o644);
    expect(readlinkSync(join(dir, 'privkey.pem'))).toBe('..data/privkey.pem');
    expect(lstatSync(join(dir, '..data')).isSymbolicLink()).toBe(true);
    expect(target.paths('web').fullchain).toBe(join(dir, 'fullchain.pem'));
  });

  it('sets the owner of files and links, and honours custom modes and names', async () => {
    const dir = join(tempDir('owner'), 'svc');
    const target = fileTarget({
      ids: ['svc'],
      dir,
      files: { fullchain: 'server.crt', privkey: 'server.key', chain: false, cert: false },
      mode: { key: 0o640, cert: 0o640 },
      owner: { uid: 65534, gid: 65534 },
    });
    await target.apply('svc', await ca.issue(), signal);
    expect(
      readdirSync(dir)
        .filter((n) => !n.startsWith('..'))
        .sort(),
    ).toEqual(['server.crt', 'server.key']);
    const key = statSync(join(dir, 'server.key'));
    expect([key.uid, key.gid, key.mode & 0o777]).toEqual([65534, 65534, 0o640]);
    expect(lstatSync(join(dir, 'server.key')).uid).toBe(65534);
  });

  it('keeps the previous version for rollback and prunes older ones', async () => {
    const dir = join(tempDir('prune'), 'p');
    const target = fileTarget({ ids: ['p'], dir });
    const generations = [];
    for (let i = 0; i < 4; i++) {
      const generation = await ca.issue();
      generations.push(generation);
      await target.apply('p', generation, signal);
    }
    expect(readdirSync(dir).filter((n) => /^\.\.\d/.test(n))).toHaveLength(2);
    await target.rollback('p', generations[2]!, signal);
    expect(new X509Certificate(readFileSync(join(dir, 'cert.pem'))).serialNumber.toLowerCase()).toBe(
      new X509Certificate(generations[2]!.chainPem).serialNumber.toLowerCase(),
    );
    // A generation no longer on disk is written again from what rollback was given.
    await target.rollback('p', generations[0]!, signal);
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe(generations[0]!.key.toPem());
    // No previous generation: the set is removed, nothing stale is left to be served.
    await target.rollback('p', null, signal);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a reader resolving ..data once never sees a certificate with another version`s key while the set flips', async () => {
    const dir = join(tempDir('flip'), 'f');
    const target = fileTarget({ ids: ['f'], dir, files: { combined: true } });
    const generations = await Promise.all(Array.from({ length: 4 }, () => ca.issue()));
    await target.apply('f', generations[0]!, signal);
    const reader = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const { readFileSync, realpathSync } = require('node:fs');
      const { X509Certificate, createPrivateKey } = require('node:crypto');
      const { join } = require('node:path');
      let reads = 0, mismatched = 0, stop = false;
      parentPort.on('message', () => { stop = true; });
      const check = (certPem, keyPem) => {
        reads++;
        if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) mismatched++;
      };
      (function loop() {
        for (let i = 0; i < 50 && reads < 200000; i++) {
          try {
            const version = realpathSync(join(workerData, '..data'));
            check(readFileSync(join(version, 'cert.pem')), readFileSync(join(version, 'privkey.pem')));
          } catch (error) {
            // A version two flips old is pruned: gone as a whole, never half there.
            if (error.code !== 'ENOENT') throw error;
          }
          const combined = readFileSync(join(workerData, 'combined.pem'), 'utf8');
          check(combined, combined.slice(combined.indexOf('-----BEGIN PRIVATE KEY')));
        }
        if (stop || reads >= 200000) parentPort.postMessage({ reads, mismatched });
        else setImmediate(loop);
      })();
      `,
      { eval: true, workerData: dir },
    );
    const result = new Promise<{ reads: number; mismatched: number }>((resolve) =>
      reader.once('message', resolve),
    );
    for (let i = 1; i <= 40; i++) await target.apply('f', generations[i % generations.length]!, signal);
    reader.postMessage('stop');
    const { reads, mismatched } = await result;
    await reader.terminate();
    expect(reads).toBeGreaterThan(40);
    expect(mismatched).toBe(0);
  });
});
