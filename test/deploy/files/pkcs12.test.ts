// PKCS#12 output, read back by Node's TLS (a server loaded from it serves the leaf it was built
// from, so key and certificate are paired) and by the openssl CLI (an independent reader).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { fileTarget } from '../../../src/deploy/file-target.js';
import { probeOnce } from '../../../src/deploy/verify/probe.js';
import { testCa } from '../../support/peers/generations.js';
import { removeTempDirs, tempDir } from '../../support/peers/process.js';

afterEach(removeTempDirs);
const ca = testCa('pkcs12');
const signal = new AbortController().signal;

describe('files.pkcs12', () => {
  it('holds the key and the chain under the password from the file; Node and openssl read it', async () => {
    const base = tempDir('p12');
    writeFileSync(join(base, 'password'), 'correct horse\n');
    const dir = join(base, 'set');
    const target = fileTarget({
      ids: ['java'],
      dir,
      files: { pkcs12: { passwordFile: join(base, 'password') } },
    });
    const generation = await ca.issue();
    await target.apply('java', generation, signal);
    const path = join(dir, 'keystore.p12');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const pfx = readFileSync(path);

    const server = tls.createServer({ pfx, passphrase: 'correct horse' }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const served = await probeOnce({ host: '127.0.0.1', port, protocol: 'tls' }, 10_000);
      expect(served.fingerprint256).toBe(generation.info.fingerprint256);
    } finally {
      server.close();
    }
    expect(() => tls.createSecureContext({ pfx, passphrase: 'wrong' })).toThrow();

    const openssl = spawnSync(
      'openssl',
      ['pkcs12', '-in', path, '-passin', 'pass:correct horse', '-nokeys'],
      {
        encoding: 'utf8',
      },
    );
    expect(openssl.status).toBe(0);
    expect(openssl.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(generation.chain.length);
  });

  it('an unreadable password file is DEPLOY_FAILED and nothing is written', async () => {
    const base = tempDir('p12-missing');
    const dir = join(base, 'set');
    const target = fileTarget({
      ids: ['java'],
      dir,
      files: { pkcs12: { passwordFile: join(base, 'nope') } },
    });
    await expect(target.apply('java', await ca.issue(), signal)).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
    });
    expect(() => statSync(join(dir, '..data'))).toThrow();
  });

  it('refuses a relative password file path', () => {
    expect(() => fileTarget({ ids: ['j'], dir: '/x', files: { pkcs12: { passwordFile: 'pw' } } })).toThrow(
      expect.objectContaining({ details: { option: 'files.pkcs12.passwordFile' } }),
    );
  });
});
