// The docs point at the tests that prove what they say, as `test/….test.ts` and optionally the
// test's title in quotes right after it. Each such file must exist and hold that title, so a
// renamed or removed test shows up here instead of leaving a doc pointing at nothing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function markdown(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? markdown(join(dir, entry.name))
      : entry.name.endsWith('.md')
        ? [join(dir, entry.name)]
        : [],
  );
}

it('every test a doc cites exists, with the title it quotes', () => {
  const problems: string[] = [];
  let cited = 0;
  for (const doc of [...markdown('docs'), 'examples/README.md']) {
    const text = readFileSync(join(root, doc), 'utf8').replace(/\s+/g, ' ');
    for (const [, file, title] of text.matchAll(/`(test\/[^`\s]+\.test\.ts)`(?:, "([^"]+)")?/g)) {
      cited++;
      if (!existsSync(join(root, file!))) {
        problems.push(`${doc}: ${file} does not exist`);
        continue;
      }
      const source = readFileSync(join(root, file!), 'utf8').replace(/\s+/g, ' ');
      if (title && !source.includes(title)) problems.push(`${doc}: ${file} has no "${title}"`);
    }
  }
  expect(problems).toEqual([]);
  expect(cited).toBeGreaterThan(20);
});
