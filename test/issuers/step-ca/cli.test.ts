// The built `certkeeper token` command (dist/cli, as `npx certkeeper` runs it): mint a token on
// the "host" with step-ca's encrypted provisioner key, hand it to the "container" as a secret
// file, enroll with it. Run `npm run build` first (`npm test` does).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/main.js';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { context, makeRequest } from '../../support/step-ca/harness.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'dist/cli/index.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

let ca: FakeStepCa;
let dir: string;
let files: { key: string; password: string; root: string };
beforeAll(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` before these tests`);
  ca = await FakeStepCa.start();
  dir = mkdtempSync(join(tmpdir(), 'certkeeper-cli-'));
  files = {
    key: join(dir, 'provisioner.jwe'),
    password: join(dir, 'password.txt'),
    root: join(dir, 'root_ca.crt'),
  };
  writeFileSync(files.key, ca.provisioner.encryptedKey);
  writeFileSync(files.password, `${ca.provisioner.password}\n`);
  writeFileSync(files.root, ca.rootPem);
});
afterAll(async () => {
  await ca?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function certkeeper(...args: string[]) {
  const run = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const common = () => [
  '--ca-url',
  ca.url,
  '--root',
  files.root,
  '--provisioner',
  ca.provisioner.name,
  '--key',
  files.key,
  '--password-file',
  files.password,
];

describe('certkeeper token', () => {
  it('is the package bin', () => {
    expect(pkg.bin).toEqual({ certkeeper: './dist/cli/index.js' });
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('mints a token (encrypted key + password file) that the service enrolls with from a secret file', async () => {
    const run = certkeeper('token', ...common(), '--san', 'api.test', '--san', '10.0.0.7', 'api.test');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const token = run.stdout.trim();
    expect(run.stdout).toBe(`${token}\n`);
    expect(decodeJwt(token)).toMatchObject({
      iss: ca.provisioner.name,
      sub: 'api.test',
      sans: ['api.test', '10.0.0.7'],
      aud: `${ca.url}/1.0/sign`,
      sha: ca.rootFingerprint,
    });
    const secret = join(dir, 'token');
    writeFileSync(secret, run.stdout);
    const issuer = new StepCaIssuer({
      caUrl: ca.url,
      rootFingerprint: ca.rootFingerprint,
      token: { file: secret },
    });
    const issued = await issuer.issue(await makeRequest(['api.test', '10.0.0.7']), context());
    expect(issued.chainPem).toMatch(/BEGIN CERTIFICATE/);
    expect(ca.log.filter((e) => e.path === '/1.0/sign').map((e) => e.status)).toEqual([201]);
  });

  it("dates the token by the command's clock (nbf, iat, exp): a FakeClock's time, not the host's", async () => {
    const clock = new FakeClock(Date.UTC(2030, 0, 2, 3, 4, 5));
    const run = await runCli(['token', ...common(), 'api.test'], {
      env: {},
      cwd: dir,
      now: () => clock.now(),
    });
    expect(run.stderr).toBe('');
    const claims = decodeJwt(run.stdout.trim());
    const at = Date.UTC(2030, 0, 2, 3, 4, 5) / 1000;
    expect(claims).toMatchObject({ nbf: at, iat: at, exp: at + 300 });
  });

  it.each([
    [['--san', '10.0.0.7', 'api.internal'], 'api.internal', ['api.internal', '10.0.0.7']],
    [
      ['api.internal', 'db.internal', '--san', '10.0.0.7', '--san', 'db.internal'],
      'api.internal',
      ['api.internal', 'db.internal', '10.0.0.7'],
    ],
    [['api.internal'], 'api.internal', ['api.internal']],
  ])('every positional name lands in the token: %j', (args, sub, sans) => {
    const run = certkeeper('token', ...common(), ...args);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(decodeJwt(run.stdout.trim())).toMatchObject({ sub, sans });
  });

  it('no name at all is a usage error', () => {
    const run = certkeeper('token', ...common(), '--san', 'api.internal');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/at least one <name>/);
  });

  it('mints a revocation token with --revoke', () => {
    const run = certkeeper('token', ...common(), '--revoke', 'ff');
    expect(run.code).toBe(0);
    expect(decodeJwt(run.stdout.trim())).toMatchObject({ sub: '255', aud: `${ca.url}/1.0/revoke` });
  });

  it('a wrong password fails with a typed message on stderr, nothing on stdout, no secret echoed', () => {
    const wrong = join(dir, 'wrong.txt');
    writeFileSync(wrong, 'hunter2-wrong-password\n');
    const args = common();
    args[args.indexOf('--password-file') + 1] = wrong;
    const run = certkeeper('token', ...args, 'api.test');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/PROVISIONER_KEY_INVALID/);
    expect(run.stderr).not.toContain('hunter2');
    expect(run.stderr).not.toContain(ca.provisioner.encryptedKey.slice(0, 30));
  });

  it.each([
    [
      ['token', '--provisioner', 'x', '--key', 'k', '--fingerprint', 'ab'.repeat(32), 's'],
      /--ca-url is required/,
    ],
    [['token', '--ca-url', 'https://ca', '--provisioner', 'x', '--key', 'k', 's'], /--root or --fingerprint/],
    [['token', '--bogus'], /Unknown option/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('usage errors exit 2: %j', (args, message) => {
    const run = certkeeper(...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('--help prints the usage and exits 0', () => {
    const run = certkeeper('token', '--help');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage: certkeeper token/);
  });
});
