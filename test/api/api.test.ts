// The public API, name by name and signature by signature, is the committed api/*.api.md: a
// change to an exported name, a parameter, a member or a type the exports reach fails here until
// the report is regenerated on purpose (`npm run api:update`, then review the diff; see
// docs/api-surface.md).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { entries } from '../../tsup.config.js';
import { apiReports } from './report.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let reports: Record<string, string>;

/** As the repository's formatter writes it, so that `biome check` accepts the committed files. */
const formatted = (text: string, file: string) =>
  execFileSync(join(root, 'node_modules/.bin/biome'), ['format', `--stdin-file-path=${file}`], {
    cwd: root,
    // A module namespace a type reaches is named by its absolute path: keep the report the same
    // in every checkout.
    input: text.replaceAll(root, ''),
    encoding: 'utf8',
  });

beforeAll(() => {
  reports = apiReports({ root, entries });
}, 120_000);

describe('public API report', () => {
  for (const entry of Object.keys(entries)) {
    const file = entry === 'index' ? 'certkeeper' : entry.replace(/\/index$/, '');
    it(`certkeeper${file === 'certkeeper' ? '' : `/${file}`} matches api/${file}.api.md`, async () => {
      const path = `api/${file}.api.md`;
      await expect(formatted(reports[entry] ?? '', path)).toMatchFileSnapshot(`../../${path}`);
    });
  }

  it('the report changes with a parameter, with a type the exports only reach, and not with a body or a comment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-api-'));
    try {
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', types: [] },
        }),
      );
      const report = (entry: string, internal: string) => {
        writeFileSync(join(dir, 'entry.ts'), entry);
        writeFileSync(join(dir, 'internal.ts'), internal);
        return apiReports({ root: dir, entries: { index: 'entry.ts' } }).index ?? '';
      };
      const internal = 'export interface Options { retries: number }\n';
      const base = report(
        'import type { Options } from "./internal.js";\nexport function run(a: string, o?: Options): number { return a.length; }\n',
        internal,
      );
      expect(base).toContain('function run(a: string, o?: Options): number;');
      expect(base).toContain('// internal.ts: Options');
      const parameter = report(
        'import type { Options } from "./internal.js";\nexport function run(a: string, b: number, o?: Options): number { return a.length + b; }\n',
        internal,
      );
      const reached = report(
        'import type { Options } from "./internal.js";\nexport function run(a: string, o?: Options): number { return a.length; }\n',
        'export interface Options { retries: string }\n',
      );
      const body = report(
        'import type { Options } from "./internal.js";\n/** Runs. */\nexport function run(a: string, o?: Options): number { return a.length * 2; }\n',
        internal,
      );
      expect(parameter).not.toBe(base);
      expect(reached).not.toBe(base);
      expect(body).toBe(base);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
