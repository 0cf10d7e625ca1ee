// fileTarget's own decisions, without a service: option validation, {id} directories, a repeated
// deploy of what is already in the files, and a failed reload flipping the files back.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { fileTarget } from '../../src/deploy/file-target.js';
import type { ReloadAction, ReloadContext } from '../../src/deploy/reload/action.js';
import { signalReload } from '../../src/deploy/reload/signal.js';
import { testCa } from '../support/peers/generations.js';
import { removeTempDirs, tempDir } from '../support/peers/process.js';

afterEach(removeTempDirs);
const ca = testCa('target');
const signal = new AbortController().signal;

/** A reload action that records what it was told and fails when asked to. */
function recorder() {
  const seen: ReloadContext[] = [];
  let failing = false;
  const action: ReloadAction = {
    description: 'recorder',
    async run(context) {
      seen.push(context);
      if (failing) throw Object.assign(new Error('refused'), { code: 'DEPLOY_FAILED' });
    },
  };
  return { action, seen, fail: (value: boolean) => (failing = value) };
}

describe('fileTarget', () => {
  it('refuses bad options with the option named', () => {
    const cases: [object, string][] = [
      [{ ids: [], dir: '/x' }, 'ids'],
      [{ ids: ['a'], dir: 'relative' }, 'dir'],
      [{ ids: ['a', 'b'], dir: '/x' }, 'dir'],
      [{ ids: ['a'], dir: '/x', keep: 0 }, 'keep'],
      [{ ids: ['a'], dir: '/x', mode: { key: 0o1000 } }, 'mode.key'],
      [{ ids: ['a'], dir: '/x', files: { privkey: '../escape' } }, 'files.privkey'],
      [{ ids: ['a'], dir: '/x', files: { cert: 'same.pem', chain: 'same.pem' } }, 'files.cert'],
      [{ ids: ['a'], dir: '/x', reload: [{}] }, 'reload[0]'],
      [{ ids: ['a'], dir: '/x', verify: [{ host: 'h', port: 0 }] }, 'verify[0].port'],
    ];
    for (const [options, option] of cases) {
      expect(() => fileTarget(options as never), option).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', details: { option } }),
      );
    }
  });

  it('serves each id in its own directory when dir has {id}', async () => {
    const base = tempDir('ids');
    const target = fileTarget({ ids: ['api', 'web'], dir: `${base}/{id}` });
    expect([target.serves('api'), target.serves('web'), target.serves('other')]).toEqual([true, true, false]);
    const generation = await ca.issue();
    await target.apply('web', generation, signal);
    expect(readFileSync(join(base, 'web', 'privkey.pem'), 'utf8')).toBe(generation.key.toPem());
    await expect(target.apply('other', generation, signal)).rejects.toMatchObject({
      code: 'UNKNOWN_CERTIFICATE',
    });
  });

  it('tells reload actions the stable and the version paths and the fingerprint', async () => {
    const dir = join(tempDir('ctx'), 'set');
    const { action, seen } = recorder();
    const target = fileTarget({ ids: ['web'], dir, reload: [action] });
    const generation = await ca.issue();
    await target.apply('web', generation, signal);
    expect(seen[0]).toMatchObject({ id: 'web', fingerprint256: generation.info.fingerprint256 });
    expect(seen[0]!.paths.privkey).toBe(join(dir, 'privkey.pem'));
    expect(readFileSync(seen[0]!.versionPaths.privkey!, 'utf8')).toBe(generation.key.toPem());
    // A repeated deploy writes nothing new but still reloads (a restarted service may need it).
    await target.apply('web', generation, signal);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.versionPaths.privkey).toBe(seen[0]!.versionPaths.privkey);
  });

  it('a failed reload flips the files back to the previous version and reloads onto them', async () => {
    const dir = join(tempDir('undo'), 'set');
    const { action, seen, fail } = recorder();
    const target = fileTarget({ ids: ['web'], dir, reload: [action] });
    const [old, next] = [await ca.issue(), await ca.issue()];
    await target.apply('web', old, signal);
    fail(true);
    await expect(target.apply('web', next, signal)).rejects.toThrow('refused');
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe(old.key.toPem());
    expect(seen.map((c) => c.fingerprint256)).toEqual([
      old.info.fingerprint256,
      next.info.fingerprint256,
      old.info.fingerprint256,
    ]);
  });

  it('a first deploy to a service that does not run yet keeps its files and has nothing to verify; a later one fails', async () => {
    const base = tempDir('not-running');
    const pidFile = join(base, 'nginx.pid'); // never written: the service has not started
    const closed = tls.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const target = fileTarget({
      ids: ['web'],
      dir: join(base, 'certs'),
      reload: [signalReload({ pidFile })],
      verify: [{ host: '127.0.0.1', port, timeoutMs: 500 }],
    });
    const first = await ca.issue();
    await target.apply('web', first, signal);
    expect(readFileSync(join(base, 'certs', 'fullchain.pem'), 'utf8')).toBe(first.chainPem);
    expect(await target.verify('web', first, signal)).toBeNull();
    // Files were there before: a service that is gone now is a failed deploy, and the old files stay.
    const second = await ca.issue();
    await expect(target.apply('web', second, signal)).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      details: { notRunning: true },
    });
    expect(readFileSync(join(base, 'certs', 'fullchain.pem'), 'utf8')).toBe(first.chainPem);
  });

  it('applies to one set run one after another, never interleaved', async () => {
    const dir = join(tempDir('queue'), 'set');
    const events: string[] = [];
    const slow: ReloadAction = {
      description: 'slow',
      async run(context) {
        events.push(`start ${context.fingerprint256.slice(0, 8)}`);
        await new Promise((resolve) => setTimeout(resolve, 150));
        events.push(`end ${context.fingerprint256.slice(0, 8)}`);
      },
    };
    const target = fileTarget({ ids: ['web'], dir, reload: [slow] });
    const [a, b] = [await ca.issue(), await ca.issue()];
    await Promise.all([target.apply('web', a, signal), target.apply('web', b, signal)]);
    const [fa, fb] = [a.info.fingerprint256.slice(0, 8), b.info.fingerprint256.slice(0, 8)];
    expect(events).toEqual([`start ${fa}`, `end ${fa}`, `start ${fb}`, `end ${fb}`]);
    expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe(b.key.toPem());
  });

  it('a rollback whose old certificate is not served live either throws LIVE_VERIFY_FAILED', async () => {
    const other = await ca.issue();
    const server = tls.createServer({ key: other.key.toPem(), cert: other.chainPem }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const dir = join(tempDir('rb'), 'set');
      const target = fileTarget({ ids: ['web'], dir, verify: [{ host: '127.0.0.1', port, timeoutMs: 500 }] });
      const [old, next] = [await ca.issue(), await ca.issue()];
      await target.apply('web', old, signal);
      await target.apply('web', next, signal);
      await expect(target.rollback('web', old, signal)).rejects.toMatchObject({
        code: 'LIVE_VERIFY_FAILED',
        details: { expected: old.info.fingerprint256, served: other.info.fingerprint256 },
      });
      // The files are the old ones all the same: what could be restored, was.
      expect(readFileSync(join(dir, 'privkey.pem'), 'utf8')).toBe(old.key.toPem());
    } finally {
      server.close();
    }
  });
});
