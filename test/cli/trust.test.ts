// certkeeper trust install|uninstall with Debian's real tools in a throwaway root: a temporary
// directory stands for / (update-ca-certificates' paths below it) and for the NSS database, so the
// machine's own trust stores are never touched. Proven with real clients: curl with the rebuilt
// system bundle, and headless chromium reading the NSS database, reach a server whose certificate
// the embedded CA issued, only while the root is installed.
import { execFile, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { findTool, requireTools } from '../support/system-tools.js';
import { cli, type Fixture, storeOf } from './support.js';

const tools = requireTools(
  ['update-ca-certificates', 'certutil', 'curl', 'openssl'],
  'ca-certificates, libnss3-tools, curl, openssl',
  '`certkeeper trust` tests',
);
const browser = findTool('chromium');

describe.skipIf(!tools)('certkeeper trust in a throwaway root', () => {
  let f: Fixture;
  let sysroot: string;
  let manager: CertificateManager;
  let server: Server;
  let url: string;
  let root: string | undefined;
  const bundle = () => join(sysroot, 'etc/ssl/certs/ca-certificates.crt');

  beforeAll(async () => {
    f = (await storeOf('file'))!;
    // A miniature Debian trust store: one real CA listed in ca-certificates.conf, as on a system.
    sysroot = mkdtempSync(join(tmpdir(), 'certkeeper-sysroot-'));
    for (const dir of [
      'etc/ssl/certs',
      'usr/share/ca-certificates/mozilla',
      'usr/local/share/ca-certificates',
      'etc/ca-certificates/update.d',
    ])
      mkdirSync(join(sysroot, dir), { recursive: true });
    const some = readdirSync('/usr/share/ca-certificates/mozilla').find((n) => n.endsWith('.crt'))!;
    copyFileSync(
      join('/usr/share/ca-certificates/mozilla', some),
      join(sysroot, 'usr/share/ca-certificates/mozilla', some),
    );
    writeFileSync(join(sysroot, 'etc/ca-certificates.conf'), `mozilla/${some}\n`);
    spawnSync(tools!['update-ca-certificates'], [
      '--certsconf',
      join(sysroot, 'etc/ca-certificates.conf'),
      '--certsdir',
      join(sysroot, 'usr/share/ca-certificates'),
      '--localcertsdir',
      join(sysroot, 'usr/local/share/ca-certificates'),
      '--etccertsdir',
      join(sysroot, 'etc/ssl/certs'),
      '--hooksdir',
      join(sysroot, 'etc/ca-certificates/update.d'),
    ]);
    expect(existsSync(bundle())).toBe(true);

    manager = createCertificateManager({
      store: f.store,
      certificates: [{ id: 'local', names: ['localhost', '127.0.0.1'] }],
      logger: silentLogger,
      reconcileIntervalMs: 0,
    });
    server = createHttpsServer(manager, {}, (_req, res) => res.end('hello from certkeeper'));
    await manager.start();
    await manager.ready();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://localhost:${(server.address() as AddressInfo).port}/`;
    [root] = await manager.trustAnchors();
  }, 60_000);

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await manager?.stop();
    await f?.cleanup();
    if (sysroot) rmSync(sysroot, { recursive: true, force: true });
  });

  // Asynchronous: the server answering curl runs in this process's event loop.
  const curl = () =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const args = [
        '-sS',
        '--cacert',
        bundle(),
        '--resolve',
        `localhost:${new URL(url).port}:127.0.0.1`,
        url,
      ];
      execFile(tools!.curl, args, { encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });

  it('install adds the root to the system bundle (curl trusts the server), uninstall takes it out', async () => {
    expect((await curl()).status).toBe(60); // SSL certificate problem: unable to get local issuer certificate

    const install = await cli(['trust', 'install', ...f.args, '--sysroot', sysroot, '--no-nss']);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    const [file] = readdirSync(join(sysroot, 'usr/local/share/ca-certificates'));
    expect(file).toMatch(/^certkeeper-[0-9a-f]{16}\.crt$/);
    expect(install.stdout).toContain(`installed CN=certkeeper-internal Root`);
    expect(install.stdout).toMatch(/update-ca-certificates: 1 added, 0 removed; done\./);
    expect(install.stdout).toContain('NODE_EXTRA_CA_CERTS');
    expect(readFileSync(bundle(), 'utf8')).toContain(root!.trim());
    const trusted = await curl();
    expect(trusted.stderr).toBe('');
    expect(trusted.stdout).toBe('hello from certkeeper');

    const uninstall = await cli(['trust', 'uninstall', ...f.args, '--sysroot', sysroot, '--no-nss']);
    expect(uninstall.code).toBe(0);
    expect(uninstall.stdout).toContain(`removed ${join(sysroot, 'usr/local/share/ca-certificates', file!)}`);
    expect(readdirSync(join(sysroot, 'usr/local/share/ca-certificates'))).toEqual([]);
    expect(readFileSync(bundle(), 'utf8')).not.toContain(root!.trim());
    expect(readFileSync(bundle(), 'utf8')).toContain('-----BEGIN CERTIFICATE-----'); // the other CA stays
    expect((await curl()).status).toBe(60);
  });

  it('install trusts the root in an NSS database (headless chromium reads it), uninstall removes it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'certkeeper-home-'));
    try {
      const nssdb = join(home, '.pki/nssdb');
      const install = await cli(['trust', 'install', ...f.args, '--no-system', '--nssdb', nssdb]);
      expect(install.stderr).toBe('');
      expect(install.code).toBe(0);
      const nickname = /\(as (certkeeper-[0-9a-f]{16})\)/.exec(install.stdout)![1]!;
      const listing = spawnSync(tools!.certutil, ['-L', '-d', `sql:${nssdb}`], { encoding: 'utf8' }).stdout;
      expect(listing).toMatch(new RegExp(`^${nickname}\\s+C,,\\s*$`, 'm'));
      // Installing again replaces, never duplicates.
      await cli(['trust', 'install', ...f.args, '--no-system', '--nssdb', nssdb]);
      const again = spawnSync(tools!.certutil, ['-L', '-d', `sql:${nssdb}`], { encoding: 'utf8' }).stdout;
      expect(again.match(new RegExp(nickname, 'g'))).toHaveLength(1);

      if (browser) {
        const visit = async () => {
          const b = await chromium.launch({
            executablePath: browser,
            env: { ...process.env, HOME: home },
            args: [
              '--headless',
              '--no-sandbox',
              '--disable-gpu',
              '--disable-background-networking',
              '--disable-component-update',
              '--disable-sync',
              '--no-first-run',
            ],
          });
          try {
            const page = await b.newPage();
            const response = await page.goto(url).catch((e: Error) => e);
            return response instanceof Error ? response.message : await response!.text();
          } finally {
            await b.close();
          }
        };
        expect(await visit()).toBe('hello from certkeeper');
        await cli(['trust', 'uninstall', ...f.args, '--no-system', '--nssdb', nssdb]);
        expect(await visit()).toMatch(/ERR_CERT_AUTHORITY_INVALID/);
      } else {
        await cli(['trust', 'uninstall', ...f.args, '--no-system', '--nssdb', nssdb]);
      }
      const after = spawnSync(tools!.certutil, ['-L', '-d', `sql:${nssdb}`], { encoding: 'utf8' }).stdout;
      expect(after).not.toContain(nickname);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);

  it('finds the NSS databases under $HOME by itself; --purge removes every certkeeper root whatever the store holds', async () => {
    const home = mkdtempSync(join(tmpdir(), 'certkeeper-home-'));
    try {
      const nssdb = join(home, '.pki/nssdb');
      mkdirSync(nssdb, { recursive: true });
      spawnSync(tools!.certutil, ['-N', '-d', `sql:${nssdb}`, '--empty-password']);
      const profile = join(home, '.mozilla/firefox/abcd.default-release');
      mkdirSync(profile, { recursive: true });
      spawnSync(tools!.certutil, ['-N', '-d', `sql:${profile}`, '--empty-password']);
      const install = await cli(['trust', 'install', ...f.args, '--no-system'], { HOME: home });
      expect(install.code).toBe(0);
      expect(install.stdout).toContain(`in NSS database ${nssdb}`);
      expect(install.stdout).toContain(`in NSS database ${profile}`);
      const purge = await cli(['trust', 'uninstall', '--purge', '--no-system'], { HOME: home });
      expect(purge.code).toBe(0);
      expect(purge.stdout.match(/removed certkeeper-[0-9a-f]{16} from NSS database/g)).toHaveLength(2);
      const nothing = await cli(['trust', 'uninstall', '--purge', '--no-system'], { HOME: home });
      expect(nothing.stdout).toContain("nothing of certkeeper's in NSS database");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a --cert that is not a CA, and wrong usage', async () => {
    const leaf = join(f.dir, 'leaf.pem');
    writeFileSync(leaf, manager.certificate('local')!.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    const run = await cli(['trust', 'install', '--cert', leaf, '--sysroot', sysroot, '--no-nss']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/is not a CA certificate \(INVALID_OPTION\)/);
    expect(readdirSync(join(sysroot, 'usr/local/share/ca-certificates'))).toEqual([]);
    expect((await cli(['trust'])).code).toBe(2);
    expect((await cli(['trust', 'install', '--purge'])).code).toBe(2);
    expect((await cli(['trust', 'install', '--no-system', '--no-nss'])).code).toBe(2);
  });
});
