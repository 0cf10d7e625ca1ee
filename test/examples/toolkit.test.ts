// examples/toolkit.mjs (`npm run example:toolkit`): it validates the leaf it made, stores it, serves
// it and gets an answer from a client trusting only its CA, then exits by itself and cleans up.
import { readdirSync } from 'node:fs';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { cleanup, requireBuild, startExample, tempDir } from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

it('toolkit.mjs validates, stores and serves a hand-made certificate, then exits cleanly', {
  timeout: 120_000,
}, async () => {
  const tmp = tempDir('toolkit');
  const example = startExample('toolkit.mjs', { TMPDIR: tmp });
  const [, serial] = await example.waitFor(/validated: serial ([0-9a-f]+), names localhost, 127\.0\.0\.1/);
  await example.waitFor(new RegExp(`stored under .*/${serial}\\n`));
  await example.waitFor(
    new RegExp(`hello from a certkeeper certificate \\(served serial 0*${serial!.replace(/^0+/, '')}\\)`),
  );
  expect(await example.exited).toEqual({ code: 0, signal: null });
  expect(readdirSync(tmp)).toEqual([]); // its store directory is removed
});
