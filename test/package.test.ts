// The published shape: the *built* package, resolved by its own name through the exports map,
// loads with both `import` and `require`. What the tarball holds: test/package/tarball.test.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

describe('built package', () => {
  it('imports through ESM', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import * as ck from 'certkeeper';
       import * as testing from 'certkeeper/testing';
       const key = await ck.PrivateKey.generate();
       console.log(JSON.stringify({ key: String(key), err: typeof ck.CertkeeperError, testing: Object.keys(testing).sort() }));`,
    ]);
    const parsed = JSON.parse(out);
    expect(parsed.key).toBe('[PrivateKey ec-p256]');
    expect(parsed.err).toBe('function');
    expect(parsed.testing).toContain('runStoreConformance');
  });

  it('requires through CJS', () => {
    const out = node([
      '-e',
      `const ck = require('certkeeper');
       const testing = require('certkeeper/testing');
       console.log(JSON.stringify({ names: ck.parseNames(['A.test']).map((n) => n.value), testing: typeof testing.runStoreConformance }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ names: ['a.test'], testing: 'function' });
  });

  it('CJS and ESM copies agree on error identity (Symbol.for brand)', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module';
       import { CertkeeperError } from 'certkeeper';
       const cjs = createRequire(process.cwd() + '/')('certkeeper');
       console.log(new cjs.CertkeeperError('EXPIRED', 'x') instanceof CertkeeperError);`,
    ]);
    expect(out).toBe('true');
  });

  it('declares the package metadata the issue requires', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.name).toBe('certkeeper');
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.files).toEqual(['dist', 'docs', 'examples', 'CHANGELOG.md']);
    expect(pkg.engines.node).toBe('>=20');
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['.', './testing']));
  });
});
