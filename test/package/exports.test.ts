// The published shape: the *built* package, resolved by its own name through the exports map,
// loads every entry with both `import` and `require`, and publishes nothing but dist/ and the
// platform facts its comments point at (docs/platform.md).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entries } from '../../tsup.config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
const SUBPATHS = ['acme', 'step-ca', 'stores', 'crypto', 'grpc', 'undici', 'metrics', 'deploy', 'testing'];
const SPECIFIERS = ['certkeeper', ...SUBPATHS.map((s) => `certkeeper/${s}`)];

/** The value names of each entry, loaded in a fresh Node through `import` or `require`. */
function valueNames(how: 'import' | 'require'): Record<string, string[]> {
  const load = how === 'import' ? `const load = (s) => import(s);` : `const load = async (s) => require(s);`;
  const out = node([
    ...(how === 'import' ? ['--input-type=module'] : []),
    '-e',
    `${load}
     (async () => {
       const names = {};
       for (const s of ${JSON.stringify(SPECIFIERS)}) names[s] = Object.keys(await load(s)).filter((k) => k !== 'default' && k !== '__esModule').sort();
       console.log(JSON.stringify(names));
     })();`,
  ]);
  return JSON.parse(out);
}

describe('built package', () => {
  it('every entry resolves through import and through require, with the same names', () => {
    const esm = valueNames('import');
    const cjs = valueNames('require');
    expect(Object.keys(esm)).toEqual(SPECIFIERS);
    for (const specifier of SPECIFIERS) expect(esm[specifier]?.length, specifier).toBeGreaterThan(0);
    expect(cjs).toEqual(esm);
  });

  it('the toolkit works from certkeeper/crypto through ESM', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import * as ck from 'certkeeper';
       import { PrivateKey } from 'certkeeper/crypto';
       const key = await PrivateKey.generate();
       console.log(JSON.stringify({ key: String(key), err: typeof ck.CertkeeperError }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ key: '[PrivateKey ec-p256]', err: 'function' });
  });

  it('the toolkit works from certkeeper/crypto through CJS', () => {
    const out = node([
      '-e',
      `const { parseNames } = require('certkeeper/crypto');
       console.log(JSON.stringify(parseNames(['A.test']).map((n) => n.value)));`,
    ]);
    expect(JSON.parse(out)).toEqual(['a.test']);
  });

  it('the root exports no internals (store layout, TLS-ALPN-01 registry, server attachment, low-level helpers)', () => {
    const esm = valueNames('import');
    const everywhere = Object.values(esm).flat();
    for (const internal of [
      'AlpnChallengeRegistry',
      'layout',
      'certificateName',
      'issuerKey',
      'ServerAttachment',
      'StepCaClient',
      'TokenSource',
      'canonicalIp',
      'randomSerial',
      'createAlpnCertificate',
      'certId',
    ]) {
      expect(everywhere, internal).not.toContain(internal);
    }
    // Peer-bound features are in their own entries, not in the root.
    for (const name of ['createRotatingDispatcher', 'grpcServerCredentials', 'RedisStore', 'PostgresStore']) {
      expect(esm.certkeeper, name).not.toContain(name);
    }
  });

  it('CJS and ESM copies agree on error identity (Symbol.for brand), also across entries', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module';
       import { CertkeeperError } from 'certkeeper';
       import { parseCertificates } from 'certkeeper/crypto';
       const cjs = createRequire(process.cwd() + '/')('certkeeper');
       let fromSubpath;
       try { parseCertificates('nothing'); } catch (e) { fromSubpath = e; }
       console.log(JSON.stringify([new cjs.CertkeeperError('EXPIRED', 'x') instanceof CertkeeperError, fromSubpath instanceof CertkeeperError, fromSubpath?.code]));`,
    ]);
    expect(JSON.parse(out)).toEqual([true, true, 'MALFORMED_PEM']);
  });

  it('the exports map, typesVersions and the build entries name the same entries, with files for each condition', () => {
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
    expect(subpaths).toEqual(['.', ...SUBPATHS.map((s) => `./${s}`)]);
    expect(Object.keys(entries).sort()).toEqual(['index', ...SUBPATHS.map((s) => `${s}/index`)].sort());
    expect(Object.keys(pkg.typesVersions['*']).sort()).toEqual([...SUBPATHS].sort());
    for (const subpath of subpaths) {
      const base = subpath === '.' ? 'index' : `${subpath.slice(2)}/index`;
      expect(pkg.exports[subpath], subpath).toEqual({
        import: { types: `./dist/${base}.d.ts`, default: `./dist/${base}.js` },
        require: { types: `./dist/${base}.d.cts`, default: `./dist/${base}.cjs` },
      });
      for (const file of [`${base}.d.ts`, `${base}.js`, `${base}.d.cts`, `${base}.cjs`]) {
        expect(existsSync(join(root, 'dist', file)), file).toBe(true);
      }
      if (subpath !== '.') expect(pkg.typesVersions['*'][subpath.slice(2)]).toEqual([`./dist/${base}.d.ts`]);
    }
  });

  it('declares the package metadata the issue requires', () => {
    expect(pkg.name).toBe('certkeeper');
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.files).toEqual(['dist', 'docs', 'examples', 'CHANGELOG.md']);
    expect(pkg.engines.node).toBe('>=20');
  });

  // What else the tarball may hold, and may not: test/package/tarball.test.ts.
  it('npm pack publishes every entry and docs/platform.md', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
    });
    const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'docs/platform.md',
        ...SUBPATHS.flatMap((s) => [`dist/${s}/index.js`, `dist/${s}/index.cjs`, `dist/${s}/index.d.ts`]),
      ]),
    );
  });
});
