// An application's view of the packed package, in a project outside this repository where
// the package's dependencies are installed and none of its optional peers (undici, @grpc/grpc-js,
// ioredis, pg, prom-client, @opentelemetry/api, vitest):
//   - TypeScript with `skipLibCheck: false` compiles imports of the root and of every entry
//     that does not name a peer; the entries named after a peer fail without it (so the check
//     would see a leak);
//   - esbuild bundles an application importing only the root, nothing marked external, and the
//     bundle holds no optional peer and runs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const PEERS = Object.keys(pkg.peerDependencies);
// Every entry but the two whose types are a peer's: the shared stores, the metrics collectors and
// the conformance kits keep their peers' types private or structural.
const PEER_FREE = [
  'certkeeper',
  'certkeeper/acme',
  'certkeeper/step-ca',
  'certkeeper/stores',
  'certkeeper/crypto',
  'certkeeper/metrics',
  'certkeeper/testing',
];
const PEER_BOUND = { 'certkeeper/undici': 'undici', 'certkeeper/grpc': '@grpc/grpc-js' };

let app: string;

/** `tsc --noEmit` in the application with one source file; the compiler's output, '' when clean. */
function compile(source: string): string {
  writeFileSync(join(app, 'index.ts'), source);
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', app], {
      cwd: app,
      encoding: 'utf8',
    });
    return '';
  } catch (error) {
    return String((error as { stdout?: string }).stdout);
  }
}

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'certkeeper-consumer-'));
  // The package as npm would publish it (dist/ must be built, as for the other package tests).
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', app], {
      cwd: root,
      encoding: 'utf8',
    }),
  )[0].filename as string;
  const modules = join(app, 'node_modules');
  mkdirSync(modules);
  execFileSync('tar', ['-xzf', join(app, packed), '-C', modules]);
  execFileSync('mv', [join(modules, 'package'), join(modules, 'certkeeper')]);
  // Its dependencies (what `npm install certkeeper` adds) and Node's types; no optional peer.
  for (const name of [...Object.keys(pkg.dependencies), '@types/node']) {
    mkdirSync(join(modules, name, '..'), { recursive: true });
    symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir');
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        types: ['node'],
        noEmit: true,
      },
      files: ['index.ts'],
    }),
  );
}, 120_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('the packed package in an application without the optional peers', () => {
  it('no optional peer is installed in the application', () => {
    for (const peer of PEERS) {
      const found = (() => {
        try {
          execFileSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(peer)})`], {
            cwd: app,
            stdio: 'ignore',
          });
          return true;
        } catch {
          return false;
        }
      })();
      expect(found, peer).toBe(false);
    }
  });

  it('compiles with skipLibCheck: false against the root and every peer-free entry', () => {
    const source = [
      ...PEER_FREE.map((s, i) => `import * as e${i} from '${s}';`),
      `import { createCertificateManager, MemoryStore, type ManagerOptions } from 'certkeeper';`,
      `const options: ManagerOptions = { store: new MemoryStore(), certificates: [{ names: ['a.test'] }] };`,
      `const manager = createCertificateManager(options);`,
      `export const used = [manager.status().length, ${PEER_FREE.map((_, i) => `Object.keys(e${i}).length`).join(', ')}];`,
    ].join('\n');
    expect(compile(source)).toBe('');
  }, 120_000);

  it('the entries named after a peer need it: compiling them without it fails on the peer', () => {
    const entries = Object.keys(PEER_BOUND);
    const output = compile(
      `${entries.map((e, i) => `import * as e${i} from '${e}';`).join('\n')}\nexport const n = [${entries.map((_, i) => `e${i}`).join(', ')}];\n`,
    );
    for (const [entry, peer] of Object.entries(PEER_BOUND)) {
      expect(output, entry).toMatch(
        new RegExp(`${entry.replace('certkeeper/', '')}/index\\.d\\.ts.*Cannot find module '${peer}'`),
      );
    }
  }, 120_000);

  it('an application importing the root bundles with esbuild, nothing external, no optional peer inside, and runs', () => {
    writeFileSync(
      join(app, 'main.mjs'),
      `import { createCertificateManager, InternalCA, MemoryStore, silentLogger } from 'certkeeper';
       const store = new MemoryStore();
       const manager = createCertificateManager({ store, issuer: new InternalCA({ store }), logger: silentLogger, keepAlive: false,
         certificates: [{ names: ['bundled.test'] }] });
       await manager.start();
       console.log(JSON.stringify(manager.status().map((s) => s.id)));
       await manager.stop();`,
    );
    execFileSync(
      join(root, 'node_modules/.bin/esbuild'),
      [
        'main.mjs',
        '--bundle',
        '--platform=node',
        '--format=esm',
        '--outfile=bundle.mjs',
        '--metafile=meta.json',
        '--log-level=error',
        // CommonJS dependencies inside an ESM bundle call require() for Node built-ins.
        `--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);`,
      ],
      { cwd: app, encoding: 'utf8' },
    );
    const inputs = Object.keys(JSON.parse(readFileSync(join(app, 'meta.json'), 'utf8')).inputs);
    expect(inputs.some((i) => i.includes('certkeeper/dist/index.js'))).toBe(true);
    for (const peer of PEERS)
      expect(
        inputs.filter((i) => i.includes(`node_modules/${peer}/`)),
        peer,
      ).toEqual([]);
    const out = execFileSync(process.execPath, ['bundle.mjs'], { cwd: app, encoding: 'utf8' }).trim();
    expect(JSON.parse(out)).toEqual(['bundled.test']);
  }, 120_000);
});
