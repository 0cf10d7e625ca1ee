// A certificate may name its issuer(s) among the manager's (`certificates[i].issuer`): one manager
// mixes a FileSourceIssuer for one certificate with the internal CA for another, each served by
// real handshakes; a certificate that names the file source never falls back to the CA.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { isCertkeeperError } from '../../src/errors.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import type { ManagerOptions } from '../../src/manager/options.js';
import { FileSourceIssuer } from '../../src/sources/file-source-issuer.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { makePki } from '../support/pki.js';
import { close, handshake, listen } from '../support/tls.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function files() {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-issuers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const source = new FileSourceIssuer({
    id: 'file-source',
    chain: join(dir, '{id}/fullchain.pem'),
    key: join(dir, '{id}/privkey.pem'),
    attempts: 1,
  });
  return { dir, source };
}

function make(options: Omit<ManagerOptions, 'store' | 'logger'>): CertificateManager {
  const manager = createCertificateManager({
    store: new MemoryStore(),
    logger: silentLogger,
    reconcileIntervalMs: 0,
    ...options,
  });
  cleanups.push(() => manager.stop());
  return manager;
}

describe('per-certificate issuers', () => {
  it('one manager serves the files of one certificate and the internal CA for another, by SNI', async () => {
    const { dir, source } = files();
    const pki = await makePki({ names: ['files.test'] });
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files/fullchain.pem'), pki.chainPem);
    writeFileSync(join(dir, 'files/privkey.pem'), pki.keyPem);
    const ca = new InternalCA({ name: 'mixed' });
    // The CA comes first: without the option, every certificate would be the CA's.
    const manager = make({
      issuer: [ca, source],
      certificates: [
        { id: 'files', names: ['files.test'], issuer: 'file-source' },
        { id: 'minted', names: ['minted.test'], issuer: ca },
        { id: 'default', names: ['default.test'] },
      ],
    });
    const server = tls.createServer({});
    cleanups.push(() => close(server));
    manager.attach(server);
    await manager.start();
    await manager.ready();
    const port = await listen(server);

    const issuers = Object.fromEntries(manager.status().map((s) => [s.id, s.issuer]));
    expect(issuers).toEqual({ files: 'file-source', minted: ca.id, default: ca.id });
    const fromFiles = await handshake(port, { servername: 'files.test' });
    expect(fromFiles.serial).toBe(pki.leaf.certificate.info.serialNumber);
    const minted = await handshake(port, { servername: 'minted.test' });
    expect(minted.serial).toBe(manager.certificate('minted')!.serial);
    expect(minted.serial).not.toBe(fromFiles.serial);
  });

  it('a certificate naming the file source is never issued by another issuer of the manager', async () => {
    const { source } = files(); // no files written for it
    const ca = new InternalCA({ name: 'fallback' });
    const manager = make({
      issuer: [source, ca],
      certificates: [
        { id: 'only-files', names: ['only.test'], issuer: ['file-source'] },
        { id: 'any', names: ['any.test'] },
      ],
    });
    await manager.start();
    await expect(manager.renewNow('only-files')).rejects.toSatisfy(isCertkeeperError);
    await manager.ready({ ids: ['any'] });
    const status = Object.fromEntries(manager.status().map((s) => [s.id, s]));
    expect(status['only-files']).toMatchObject({ issuer: null, serial: null });
    expect(status['only-files']!.lastError).not.toBeNull();
    // The one without the option falls through the list to the CA, as before.
    expect(status.any).toMatchObject({ issuer: ca.id });
  });

  it.each([
    ['an unknown id', 'nope', 'certificates[0].issuer'],
    [
      'an issuer object not given to the manager',
      new InternalCA({ name: 'stranger' }),
      'certificates[0].issuer',
    ],
    ['an empty list', [], 'certificates[0].issuer'],
    ['a number in a list', ['file-source', 5], 'certificates[0].issuer[1]'],
    ['an issuer twice', ['file-source', 'file-source'], 'certificates[0].issuer'],
  ])('refuses %s with INVALID_OPTION naming the option', (_what, issuer, option) => {
    const { source } = files();
    let error: unknown;
    try {
      make({
        issuer: [source, new InternalCA({ name: 'valid' })],
        certificates: [{ id: 'x', names: ['x.test'], issuer: issuer as string }],
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option } });
  });

  it('refuses a purpose none of the named issuers can issue, naming the purpose', () => {
    const { source } = files();
    const limited = new FileSourceIssuer({ id: 'servers-only', chain: 'c', key: 'k', purposes: ['server'] });
    expect(() =>
      make({
        issuer: [source, limited],
        certificates: [{ id: 'c', names: ['c.test'], purpose: 'client', issuer: 'servers-only' }],
      }),
    ).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'certificates[0].purpose' } }),
    );
  });

  it('manage() validates the option the same way', async () => {
    const { source } = files();
    const manager = make({ issuer: [source], certificates: [{ id: 'a', names: ['a.test'] }] });
    expect(() => manager.manage({ id: 'b', names: ['b.test'], issuer: 'missing' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'manage(certificate).issuer' } }),
    );
  });
});
