// Runs one fixture of test/testing/fixtures/ in its own vitest process and reports each test's
// outcome: a kit is proven by the faulty implementations it fails, not only by the good ones it passes.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface FixtureTest {
  status: string;
  failure: string;
}

/** `suite title > test title` → outcome, for every test of `fixture` (a file name in fixtures/). */
export async function runFixture(fixture: string): Promise<Map<string, FixtureTest>> {
  const root = resolve(import.meta.dirname, '../..');
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-kit-fixture-'));
  const output = join(dir, 'result.json');
  try {
    await new Promise<void>((done) => {
      execFile(
        join(root, 'node_modules/.bin/vitest'),
        [
          'run',
          `test/testing/fixtures/${fixture}`,
          '--config',
          'test/testing/fixtures/vitest.config.ts',
          '--reporter=json',
          `--outputFile=${output}`,
        ],
        { cwd: root, env: { ...process.env, CI: undefined }, maxBuffer: 1 << 26, timeout: 240_000 },
        () => done(), // failing tests are the point: the exit code is not
      );
    });
    const report = JSON.parse(readFileSync(output, 'utf8')) as {
      testResults: {
        assertionResults: {
          ancestorTitles: string[];
          title: string;
          status: string;
          failureMessages: string[];
        }[];
      }[];
    };
    const tests = new Map<string, FixtureTest>();
    for (const file of report.testResults) {
      for (const test of file.assertionResults) {
        tests.set(`${test.ancestorTitles.at(-1)} > ${test.title}`, {
          status: test.status,
          failure: test.failureMessages.join('\n'),
        });
      }
    }
    return tests;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The tests of `suite` that failed, by title. */
export function failedIn(tests: Map<string, FixtureTest>, suite: string): string[] {
  return [...tests]
    .filter(([name, test]) => name.startsWith(`${suite} > `) && test.status === 'failed')
    .map(([name]) => name.slice(suite.length + 3));
}
