// The conformance kits ship in the built `certkeeper/testing`, for ESM and CommonJS, and load in
// a plain Node process (vitest is only imported when a kit is called).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();
const KITS = ['runChallengeSolverConformance', 'runDnsProviderConformance', 'runIssuerConformance'];

it('certkeeper/testing exports the Issuer, ChallengeSolver and DnsProvider kits to ESM and CJS', () => {
  const esm = node([
    '--input-type=module',
    '-e',
    `import * as t from 'certkeeper/testing';
     console.log(JSON.stringify(${JSON.stringify(KITS)}.map((k) => typeof t[k])));`,
  ]);
  const cjs = node([
    '-e',
    `const t = require('certkeeper/testing');
     console.log(JSON.stringify(${JSON.stringify(KITS)}.map((k) => typeof t[k])));`,
  ]);
  expect(JSON.parse(esm)).toEqual(['function', 'function', 'function']);
  expect(JSON.parse(cjs)).toEqual(['function', 'function', 'function']);
});
