// `certkeeper ca` end to end, in-process through runCli, against an encrypted FileStore: the root
// made on the "admin machine" stays in a key file, the service's InternalCA issues with the
// intermediate alone, refuses what needs the root (naming the command), warns when the
// intermediate is due, and runs again after `sign-intermediate` and `sign-crl`.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/main.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { context, issue, openssl, tempDir } from '../issuers/internal-ca-support.js';
import { type Fixture, storeOf } from './support.js';

const DAY = 86_400_000;
let fixture: Fixture | null = null;
afterEach(async () => {
  await fixture?.cleanup();
  fixture = null;
});

async function setup() {
  fixture = (await storeOf('file-encrypted'))!;
  // The operator makes the store directory: the command never creates one (a typo stays visible).
  mkdirSync(join(fixture.dir, 'store'), { recursive: true, mode: 0o700 });
  const admin = tempDir('certkeeper-admin-');
  const passphrase = join(admin, 'passphrase');
  writeFileSync(passphrase, 'correct horse battery staple\n', { mode: 0o600 });
  const clock = new FakeClock();
  const ctx: CliContext = { env: { ...fixture.env }, cwd: admin, now: () => clock.now() };
  const ca = (...args: string[]) => runCli(['ca', ...args, ...fixture!.args], ctx);
  return { store: fixture.store, admin, passphrase, clock, ca, dir: fixture.dir };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

describe('certkeeper ca (root offline)', () => {
  it('init writes the root key to an encrypted 0600 file only; the service issues with the intermediate and refuses what needs the root', async () => {
    const s = await setup();
    const init = await s.ca('init', '--root-key-out', 'root.key', '--passphrase-file', s.passphrase);
    expect(init.stderr).toMatch(/root key written to .*root\.key: keep it offline/);
    expect(init.code).toBe(0);
    const keyFile = join(s.admin, 'root.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const keyPem = readFileSync(keyFile, 'utf8');
    expect(keyPem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    // Once: a second init refuses the store that holds the CA and leaves no key file behind.
    const again = await s.ca('init', '--root-key-out', 'root2.key');
    expect(again).toMatchObject({ code: 1, stderr: /ca init: the CA exists/ });
    expect(existsSync(join(s.admin, 'root2.key'))).toBe(false);

    // The root key is nowhere in the store, sealed or not; the intermediate's is.
    const { createPrivateKey } = await import('node:crypto');
    const rootKey = PrivateKey.fromKeyObject(
      createPrivateKey({ key: keyPem, passphrase: 'correct horse battery staple' }),
    );
    const ca = new InternalCA({ store: s.store, clock: s.clock });
    const rootDer = rootKey.keyObject.export({ type: 'pkcs8', format: 'der' });
    for (const file of filesUnder(join(s.dir, 'store'))) {
      expect(readFileSync(file).includes(rootDer.subarray(-32)), file).toBe(false);
    }
    expect(await ca.rootCertificate()).toBe(init.stdout);
    expect(await ca.intermediateStatus()).toMatchObject({ rootOffline: true, state: 'ok' });

    const leaf = await issue(ca, s.store, ['svc.test'], 'server', s.clock);
    const chain = join(s.admin, 'chain.pem');
    writeFileSync(chain, leaf.chain[0]!.pem);
    writeFileSync(join(s.admin, 'root.pem'), init.stdout);
    const verified = openssl(
      ['verify', '-CAfile', join(s.admin, 'root.pem'), '-untrusted', chain],
      leaf.leaf.pem,
    );
    expect(verified.output).toMatch(/OK/);

    await expect(ca.rotateIntermediate()).rejects.toMatchObject({
      code: 'CA_ROOT_OFFLINE',
      message: /certkeeper ca sign-intermediate --ca-name certkeeper-internal --root-key <file>/,
    });
    await expect(ca.beginRootRotation()).rejects.toMatchObject({
      code: 'CA_ROOT_OFFLINE',
      message: /rotating an offline root is not supported yet/,
    });
    await expect(
      ca.revoke({ chainPem: leaf.chain[0]!.pem }, 'keyCompromise', context(s.store, s.clock)),
    ).rejects.toMatchObject({ code: 'CA_ROOT_OFFLINE' });

    // The root CRL signed at init is served beside the intermediate's, verified by the root.
    const crls = await ca.crls();
    expect(crls).toHaveLength(2);
    // The root CRL signed at init runs for the default 30 days (the intermediate's for a day).
    const { x509 } = await import('../../src/crypto/x509.js');
    const imported = new x509.X509Crl(crls[1]!);
    expect(imported.nextUpdate!.getTime() - Math.floor(s.clock.now() / 1000) * 1000).toBe(30 * DAY);
    const rootCrl = join(s.admin, 'root-crl.pem');
    writeFileSync(rootCrl, crls[1]!);
    expect(
      openssl(['crl', '-noout', '-CAfile', join(s.admin, 'root.pem'), '-verify', '-in', rootCrl]).output,
    ).toMatch(/verify OK/);
  });

  it('warns once when the intermediate is due, fails once it expired, and sign-intermediate brings it back', async () => {
    const s = await setup();
    expect(
      (
        await s.ca(
          'init',
          '--root-key-out',
          'root.key',
          '--passphrase-file',
          s.passphrase,
          '--intermediate-days',
          '200',
          '--crl-days',
          '400',
        )
      ).code,
    ).toBe(0);
    const warnings: string[] = [];
    const logger = { ...context(s.store).logger, warn: (message: string) => warnings.push(message) };
    const ca = new InternalCA({ store: s.store, clock: s.clock });
    const due: string[] = [];
    ca.onIntermediateDue((status) => due.push(status.state));
    const ctx = () => ({ ...context(s.store, s.clock), logger });

    await s.clock.advance(150 * DAY); // 50 days left of 200: an online CA would have renewed it
    const status = JSON.parse((await s.ca('status', '--json')).stdout);
    expect(status).toMatchObject({ rootOffline: true, state: 'due' });
    const request = async () => (await import('../issuers/internal-ca-support.js')).request(['a.test']);
    await ca.issue(await request(), ctx());
    await ca.issue(await request(), ctx());
    expect(due).toEqual(['due']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/the root is offline; run `certkeeper ca sign-intermediate/);

    await s.clock.advance(60 * DAY); // expired
    await expect(ca.issue(await request(), ctx())).rejects.toMatchObject({
      code: 'CA_ROOT_OFFLINE',
      message: /certkeeper ca sign-intermediate/,
    });

    const wrong = join(s.admin, 'wrong');
    writeFileSync(wrong, 'not it\n');
    const refused = await s.ca('sign-intermediate', '--root-key', 'root.key', '--passphrase-file', wrong);
    expect(refused).toMatchObject({ code: 1, stderr: /cannot be decrypted with that passphrase/ });
    const signed = await s.ca(
      'sign-intermediate',
      '--root-key',
      'root.key',
      '--passphrase-file',
      s.passphrase,
    );
    expect(signed.stderr).toBe('');
    expect(signed.stdout).toMatch(/^intermediate [0-9a-f]{64} until /);
    await ca.issue(await request(), ctx());
    expect(JSON.parse((await s.ca('status', '--json')).stdout)).toMatchObject({ state: 'ok' });
  });

  it('an expired root CRL is refused, naming sign-crl; sign-crl signs and imports a new one', async () => {
    const s = await setup();
    expect((await s.ca('init', '--root-key-out', 'root.key', '--crl-days', '10')).code).toBe(0);
    const ca = new InternalCA({ store: s.store, clock: s.clock });
    expect(await ca.crls()).toHaveLength(2);
    await s.clock.advance(11 * DAY);
    await expect(ca.crls()).rejects.toMatchObject({
      code: 'CA_ROOT_OFFLINE',
      message: /certkeeper ca sign-crl --ca-name certkeeper-internal --root-key <file>/,
    });
    const other = join(s.admin, 'other.key');
    writeFileSync(other, (await PrivateKey.generate()).toPem());
    const mismatch = await s.ca('sign-crl', '--root-key', 'other.key');
    expect(mismatch).toMatchObject({ code: 1, stderr: /not the key of this CA's root \(KEY_MISMATCH\)/ });
    const signed = await s.ca('sign-crl', '--root-key', 'root.key', '-o', 'root.crl');
    expect(signed.code).toBe(0);
    expect(signed.stdout).toMatch(/^-----BEGIN X509 CRL-----/);
    const crls = await ca.crls();
    expect(crls[1]).toBe(signed.stdout);
    expect(readFileSync(join(s.admin, 'root.crl'), 'utf8')).toBe(signed.stdout);
  });

  it('the state stays sealed: without the encryption key the store shows no CA key material', async () => {
    const s = await setup();
    expect((await s.ca('init', '--root-key-out', 'root.key')).code).toBe(0);
    const plain = new FileStore({ directory: join(s.dir, 'store') });
    const raw = await plain.get('ca/certkeeper-internal/state.key');
    expect(raw).not.toBeNull();
    expect(Buffer.from(raw!).toString('utf8')).not.toMatch(/PRIVATE KEY|"intermediate"/);
    expect(s.store).toBeInstanceOf(EncryptedStore);
  });

  it('init refuses an existing key file before touching the store; --key-type and --root-days shape the root', async () => {
    const s = await setup();
    writeFileSync(join(s.admin, 'taken.key'), 'something else');
    const refused = await s.ca('init', '--root-key-out', 'taken.key');
    expect(refused).toMatchObject({
      code: 1,
      stderr: /taken\.key exists: the root key is never written over a file/,
    });
    expect(readFileSync(join(s.admin, 'taken.key'), 'utf8')).toBe('something else');
    expect(await s.store.list('ca')).toEqual([]);

    const init = await s.ca(
      'init',
      '--root-key-out',
      'root.key',
      '--key-type',
      'ec-p384',
      '--root-days',
      '100',
      '--intermediate-days',
      '50',
    );
    expect(init.code).toBe(0);
    const shown = openssl(['x509', '-noout', '-text'], init.stdout).output;
    expect(shown).toMatch(/NIST CURVE: P-384|secp384r1/);
    const root = new (await import('../../src/crypto/x509.js')).x509.X509Certificate(init.stdout);
    expect(root.notAfter.getTime() - s.clock.now()).toBeLessThanOrEqual(100 * DAY);
    expect(root.notAfter.getTime() - s.clock.now()).toBeGreaterThan(99 * DAY);
  });

  it('sign-intermediate --reason keyCompromise revokes the old intermediate: the new root CRL lists it', async () => {
    const s = await setup();
    expect((await s.ca('init', '--root-key-out', 'root.key')).code).toBe(0);
    const ca = new InternalCA({ store: s.store, clock: s.clock });
    const before = await issue(ca, s.store, ['x.test'], 'server', s.clock);
    const old = before.chain[0]!.info.serialNumber.toUpperCase();
    const signed = await s.ca('sign-intermediate', '--root-key', 'root.key', '--reason', 'keyCompromise');
    expect(signed.code).toBe(0);
    const [, rootCrl] = await ca.crls();
    const text = openssl(['crl', '-noout', '-text'], rootCrl).output;
    expect(text).toContain(`Serial Number: ${old}`);
    expect(text).toMatch(/Key Compromise/);
  });
});
