#!/usr/bin/env node
/**
 * The `certkeeper` command (package.json `bin`). One subcommand so far: `token`.
 * Each subcommand returns its output instead of printing, so it can be tested in-process; this
 * file only writes it out and sets the exit code.
 */
import { TOKEN_USAGE, tokenCommand } from './token-command.js';

const USAGE = `Usage: certkeeper <command> [options]

Commands:
  token   mint a one-time enrollment token for a step-ca compatible CA

${TOKEN_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'token') {
    const result = await tokenCommand(rest);
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    return result.code;
  }
  if (command === undefined || command === '-h' || command === '--help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  process.stderr.write(`certkeeper: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  () => {
    process.stderr.write('certkeeper: unexpected failure\n');
    process.exitCode = 1;
  },
);
