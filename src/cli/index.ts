#!/usr/bin/env node
/**
 * The `certkeeper` executable (package.json `bin`): runs main.ts with the process's arguments and
 * environment, prints what it returns, and sets the exit code.
 */
import { runCli } from './main.js';

runCli(process.argv.slice(2), { env: process.env, cwd: process.cwd(), now: Date.now }).then(
  (result) => {
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    process.exitCode = result.code;
  },
  () => {
    process.stderr.write('certkeeper: unexpected failure\n');
    process.exitCode = 1;
  },
);
