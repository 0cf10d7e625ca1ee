/**
 * The `certkeeper` command: dispatching to the subcommands, the overall help with the exit codes.
 * `runCli` returns what to print and the exit code (tests call it in-process); index.ts is the
 * executable that prints it.
 */

import { VERSION } from '../version.js';
import { type CliContext, type CommandResult, EXIT, ok } from './command.js';
import { STORE_USAGE } from './store-usage.js';

export const USAGE = `Usage: certkeeper <command> [options]

Commands:
  status         the certificates in a store: names, issuer, serial, not-after, next renewal (alias: list)
  inspect        one certificate in detail: by id from the store, or from a PEM file
  export-root    the embedded CA's root certificate (PEM)
  trust          install or uninstall that root in the system trust store and NSS databases
  token          mint a one-time enrollment token for a step-ca compatible CA
  ca             the embedded CA with its root offline: init, sign-intermediate, sign-crl, status
  agent          the daemon: keep a configuration file's certificates issued and deployed
  renew          renew certificates of an agent configuration now (one id, or --all)
  revoke         revoke a certificate of an agent configuration and replace it
  version        certkeeper's version (also --version)

Run certkeeper <command> --help for its options.

${STORE_USAGE}
Environment: CERTKEEPER_STORE, CERTKEEPER_DIR, CERTKEEPER_ENCRYPTION_KEY, CERTKEEPER_REDIS_PREFIX,
CERTKEEPER_PG_TABLE, CERTKEEPER_PG_SCHEMA.

Exit codes:
  0  success
  1  failure: the store is unreachable or unreadable, nothing was found, a tool failed
  2  usage: unknown command or option, missing argument
  3  status: a certificate needs attention (expired, not yet valid, or its stored entry damaged)
`;

// Each command's code is loaded when it runs: `certkeeper version` loads no store driver or CA.
const COMMANDS: Record<
  string,
  () => Promise<{ usage: string; run(argv: string[], ctx: CliContext): Promise<CommandResult> }>
> = {
  status: async () => {
    const m = await import('./status-command.js');
    return { usage: m.STATUS_USAGE, run: m.statusCommand };
  },
  inspect: async () => {
    const m = await import('./inspect-command.js');
    return { usage: m.INSPECT_USAGE, run: m.inspectCommand };
  },
  'export-root': async () => {
    const m = await import('./root-command.js');
    return { usage: m.EXPORT_ROOT_USAGE, run: m.exportRootCommand };
  },
  trust: async () => {
    const m = await import('./trust-command.js');
    return { usage: m.TRUST_USAGE, run: m.trustCommand };
  },
  ca: async () => {
    const m = await import('./ca-command.js');
    return { usage: m.CA_USAGE, run: m.caCommand };
  },
  token: async () => {
    const m = await import('./token-command.js');
    return { usage: m.TOKEN_USAGE, run: (argv, ctx) => m.tokenCommand(argv, ctx) };
  },
  renew: async () => {
    const m = await import('./renew-command.js');
    return { usage: m.RENEW_USAGE, run: m.renewCommand };
  },
  revoke: async () => {
    const m = await import('./revoke-command.js');
    return { usage: m.REVOKE_USAGE, run: m.revokeCommand };
  },
  agent: async () => {
    const m = await import('./agent-command.js');
    return { usage: m.AGENT_USAGE, run: m.agentCommand };
  },
};
COMMANDS.list = COMMANDS.status!;

export async function runCli(argv: string[], ctx: CliContext): Promise<CommandResult> {
  const [command, ...rest] = argv;
  const load = command === undefined ? undefined : COMMANDS[command];
  if (load) return (await load()).run(rest, ctx);
  switch (command) {
    case 'version':
    case '--version':
    case '-v':
      return rest.includes('--json')
        ? ok(`${JSON.stringify({ version: VERSION, node: process.versions.node })}\n`)
        : ok(`certkeeper ${VERSION}\n`);
    case 'help': {
      const topic = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
      return ok(topic ? (await topic()).usage : USAGE);
    }
    case '-h':
    case '--help':
      return ok(USAGE);
    case undefined:
      return { code: EXIT.USAGE, stdout: '', stderr: USAGE };
    default:
      return { code: EXIT.USAGE, stdout: '', stderr: `certkeeper: unknown command "${command}"\n\n${USAGE}` };
  }
}
