// What `npm publish` would upload, read from `npm pack --dry-run --json` on the built tree:
// only the published directories, no tests, no source map without its sources, nothing that
// looks like a secret or a store; the size is printed so a jump shows in the CI log.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Packed {
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

let packed: Packed;
let paths: string[];

beforeAll(() => {
  if (!existsSync(join(root, 'dist/index.js'))) {
    throw new Error('dist/ is missing: the tarball test reads the built package (run `npm run build`)');
  }
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
  });
  packed = JSON.parse(out)[0];
  paths = packed.files.map((f) => f.path);
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `tarball: ${kib(packed.size)} packed, ${kib(packed.unpackedSize)} unpacked, ${packed.entryCount} files`,
  );
});

describe('npm tarball', () => {
  it('holds the built entries, the docs, the examples, LICENSE and CHANGELOG, and nothing else', () => {
    const allowed = /^(dist|docs|examples)\/|^(package\.json|README\.md|LICENSE|CHANGELOG\.md)$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    expect(paths).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'CHANGELOG.md',
        'dist/index.js',
        'dist/index.cjs',
        'dist/index.d.ts',
        'dist/testing/index.js',
        'dist/cli/index.js',
        'docs/errors.md',
        'docs/getting-started.md',
        'examples/README.md',
        'examples/https.mjs',
      ]),
    );
  });

  it('LICENSE is the Apache License 2.0 the package declares', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(root, 'LICENSE'), 'utf8');
    expect(text).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(text).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });

  it('ships no test files', () => {
    const tests = paths.filter(
      (p) => /(^|\/)(test|tests|__tests__|fixtures)\//.test(p) || /\.(test|spec)\.[cm]?[jt]sx?$/.test(p),
    );
    expect(tests).toEqual([]);
  });

  it('ships no source map without the sources it names, and no code pointing at a missing map', () => {
    const shipped = new Set(paths);
    const problems: string[] = [];
    for (const path of paths) {
      const full = join(root, path);
      if (path.endsWith('.map')) {
        const map = JSON.parse(readFileSync(full, 'utf8')) as {
          sources: string[];
          sourcesContent?: unknown[];
        };
        map.sources.forEach((source, i) => {
          const embedded = typeof map.sourcesContent?.[i] === 'string';
          const beside = shipped.has(normalize(join(dirname(path), source)));
          if (!embedded && !beside)
            problems.push(`${path} names ${source}, which is neither embedded nor shipped`);
        });
      } else if (/\.[cm]?js$/.test(path)) {
        const link = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(full, 'utf8'));
        if (link && !link[1]!.startsWith('data:') && !shipped.has(normalize(join(dirname(path), link[1]!)))) {
          problems.push(`${path} points at ${link[1]}, which is not shipped`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every relative link of a shipped Markdown file points at a shipped file (npm has no repository to resolve them)', () => {
    const shipped = new Set(paths);
    const broken: string[] = [];
    for (const path of paths.filter((p) => p.endsWith('.md'))) {
      const text = readFileSync(join(root, path), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:|^#/.test(target!)) continue;
        const file = normalize(join(dirname(path), target!.split('#')[0]!));
        if (!shipped.has(file)) broken.push(`${path} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('ships no secrets, keys, stores or environment files', () => {
    const byName = paths.filter(
      (p) =>
        /(^|\/)\.certkeeper(\/|$)/.test(p) ||
        /(^|\/)\.env(\.|$)/.test(p) ||
        /(^|\/)\.npmrc$/.test(p) ||
        /(^|\/)id_(rsa|ecdsa|ed25519)/.test(p) ||
        /\.(pem|key|crt|der|p12|pfx|jks|tgz)$/i.test(p),
    );
    expect(byName).toEqual([]);
    // A private key block with a body, wherever it hides (the code names the markers, never a key).
    const keyBlock = /-----BEGIN [A-Z ]*PRIVATE KEY-----\s*[A-Za-z0-9+/=\s]{64,}-----END/;
    const withKeys = paths.filter((p) => keyBlock.test(readFileSync(join(root, p), 'utf8')));
    expect(withKeys).toEqual([]);
  });
});
