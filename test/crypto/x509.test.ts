// @peculiar/x509 needs the Reflect metadata polyfill loaded before it (tsyringe checks at load
// time), and certkeeper's package.json says `"sideEffects": false`. That flag covers only
// certkeeper's own files: the polyfill is imported bare from its own package (which does not
// claim to be pure) at the top of src/crypto/x509.ts, the one module that imports @peculiar/x509,
// so a bundler keeps it wherever that module is kept. These tests bundle an application with
// esbuild against the built package (ESM and CJS) and run it; the control shows the failure
// they would catch.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const app = mkdtempSync(join(tmpdir(), 'certkeeper-bundle-'));
mkdirSync(join(app, 'node_modules'));
symlinkSync(root, join(app, 'node_modules', 'certkeeper'));
afterAll(() => rmSync(app, { recursive: true, force: true }));
if (!existsSync(join(root, 'dist/index.js'))) throw new Error('build first (npm test runs `npm run build`)');

const ISSUE = `const ca = new InternalCA({ store: new MemoryStore() });
const pem = await ca.rootCertificate();
console.log(pem.split('\\n')[0]);`;

async function bundle(name: string, source: string, format: 'esm' | 'cjs', plugins: Plugin[] = []) {
  const entry = join(app, `${name}.${format === 'esm' ? 'mjs' : 'cjs'}`);
  writeFileSync(entry, source);
  const outfile = join(app, `${name}.out.${format === 'esm' ? 'mjs' : 'cjs'}`);
  // The application marks nothing external: everything certkeeper needs is in the bundle.
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format,
    outfile,
    logLevel: 'silent',
    plugins,
    ...(format === 'esm'
      ? {
          banner: {
            js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
          },
        }
      : {}),
  });
  return outfile;
}

const run = (file: string) => spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });

describe('the Reflect polyfill in a bundle of the built package', () => {
  it('an ESM application bundled with esbuild keeps it and signs certificates', async () => {
    const out = await bundle('esm', `import { InternalCA, MemoryStore } from 'certkeeper';\n${ISSUE}`, 'esm');
    const ran = run(out);
    expect(ran.stderr).toBe('');
    expect(ran.stdout.trim()).toBe('-----BEGIN CERTIFICATE-----');
    // The polyfill's code is in the bundle, defined before tsyringe's check reads it.
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('@reflect-metadata:registry');
  });

  it('a CommonJS application bundled with esbuild keeps it and signs certificates', async () => {
    const source = `const { InternalCA, MemoryStore } = require('certkeeper');\n(async () => {\n${ISSUE}\n})();`;
    const ran = run(await bundle('cjs', source, 'cjs'));
    expect(ran.stderr).toBe('');
    expect(ran.stdout.trim()).toBe('-----BEGIN CERTIFICATE-----');
  });

  it('control: a bundle without the polyfill fails at load, so the tests above would see a drop', async () => {
    const drop: Plugin = {
      name: 'drop-reflect-metadata',
      setup(b) {
        b.onResolve({ filter: /^reflect-metadata$/ }, () => ({ path: 'empty', namespace: 'drop' }));
        b.onLoad({ filter: /.*/, namespace: 'drop' }, () => ({ contents: '', loader: 'js' }));
      },
    };
    const out = await bundle(
      'dropped',
      `import { InternalCA, MemoryStore } from 'certkeeper';\n${ISSUE}`,
      'esm',
      [drop],
    );
    const ran = run(out);
    expect(ran.status).not.toBe(0);
    expect(ran.stderr).toMatch(/tsyringe requires a reflect polyfill/);
  });
});
