// The built `certkeeper` executable (dist/cli/index.js, what `npx certkeeper` runs): its help
// documents every command and the exit codes, `version` says the package's version, and the
// exit codes reach the shell. Run `npm run build` first (`npm test` does).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { VERSION } from '../../src/version.js';
import { type Fixture, fill, storeOf } from './support.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'dist/cli/index.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function certkeeper(args: string[], env: Record<string, string> = {}) {
  const run = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the certkeeper executable', () => {
  let f: Fixture;
  beforeAll(async () => {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` before these tests`);
    f = (await storeOf('file'))!;
  });
  afterAll(() => f?.cleanup());

  it('--help lists every command and documents the exit codes', () => {
    const run = certkeeper(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['status', 'inspect', 'export-root', 'trust', 'token', 'version'])
      expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(run.stdout).toMatch(
      /Exit codes:\n {2}0 {2}success\n {2}1 {2}failure.*\n {2}2 {2}usage.*\n {2}3 {2}status: a certificate needs attention/,
    );
    expect(certkeeper(['help', 'trust']).stdout).toMatch(/^Usage: certkeeper trust install\|uninstall/);
  });

  it('version and --version print the package version (VERSION follows package.json)', () => {
    expect(VERSION).toBe(pkg.version);
    expect(certkeeper(['version'])).toMatchObject({ code: 0, stdout: `certkeeper ${pkg.version}\n` });
    expect(certkeeper(['--version']).stdout).toBe(`certkeeper ${pkg.version}\n`);
    expect(JSON.parse(certkeeper(['version', '--json']).stdout)).toEqual({
      version: pkg.version,
      node: process.versions.node,
    });
  });

  it('exit codes reach the shell: 0, 3 once a certificate expired, 1, 2', async () => {
    await fill(f.store, [{ id: 'fresh', names: ['fresh.test'] }]);
    expect(certkeeper(['status', ...f.args]).code).toBe(0);
    await fill(f.store, [{ id: 'stale', names: ['stale.test'] }], new FakeClock(Date.now() - 72 * 3_600_000));
    const expired = certkeeper(['status', ...f.args]);
    expect(expired.code).toBe(3);
    expect(expired.stdout).toMatch(/^stale .*expired/m);
    expect(certkeeper(['inspect', 'nobody', ...f.args]).code).toBe(1);
    expect(certkeeper(['status', '--nope']).code).toBe(2);
    expect(certkeeper([]).code).toBe(2);
  });
});
