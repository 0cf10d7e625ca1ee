/**
 * `certkeeper revoke <id> --config <file> [--reason <reason>]`: revokes the certificate served
 * for `id` through the issuer that issued it, deletes it from the store (it is never served or
 * fallen back to again) and obtains its replacement, which a running agent sharing the store
 * adopts.
 */
import { parseArgs } from 'node:util';
import { withAgent } from '../agent/open.js';
import { isCertkeeperError } from '../errors.js';
import type { RevocationReason } from '../issuers/issuer.js';
import { createConsoleLogger } from '../logger.js';
import { type CliContext, type CommandResult, describe, EXIT, ok, parseError, usage } from './command.js';

const REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
];

export const REVOKE_USAGE = `Usage: certkeeper revoke <id> --config <file> [--reason <reason>]

Revokes the certificate of <id> through the issuer that issued it, removes it from the store,
and obtains its replacement (a running agent sharing the store adopts it).

Options:
  -c, --config <file>   the agent's configuration file (default: $CERTKEEPER_CONFIG)
      --reason <r>      ${REASONS.join(', ')} (default unspecified)
      --json            the result as JSON
  -h, --help            this help

Exit codes: 0 revoked and replaced, 1 failure (see the message: revoked but not yet replaced is
a failure too), 2 usage or a configuration that does not load.
`;

export async function revokeCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return parseError('revoke', error, REVOKE_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) return ok(REVOKE_USAGE);
  const path = values.config ?? ctx.env.CERTKEEPER_CONFIG;
  if (!path) return usage('revoke', '--config is required', REVOKE_USAGE);
  if (positionals.length !== 1) return usage('revoke', 'give exactly one certificate id', REVOKE_USAGE);
  const reason = (values.reason ?? 'unspecified') as RevocationReason;
  if (!REASONS.includes(reason))
    return usage('revoke', `--reason must be one of ${REASONS.join(', ')}`, REVOKE_USAGE);
  const id = positionals[0]!;
  const logger = createConsoleLogger({ level: 'warn', write: (line) => process.stderr.write(line) });
  let revokedSerial: string | null = null;
  try {
    const result = await withAgent(path, { env: ctx.env, cwd: ctx.cwd, logger }, async (agent) => {
      const manager = agent.managerOf(id);
      manager.on('revoked', (e) => {
        if (e.id === id) revokedSerial = e.serial;
      });
      await manager.revoke(id, reason);
      return { id, reason, revokedSerial, serial: manager.status().find((s) => s.id === id)?.serial ?? null };
    });
    if (values.json) return ok(`${JSON.stringify(result, null, 2)}\n`);
    return ok(`revoked ${id}: serial ${result.revokedSerial} (${reason}); now serial ${result.serial}\n`);
  } catch (error) {
    const code =
      isCertkeeperError(error, 'INVALID_OPTION') || isCertkeeperError(error, 'NOT_SUPPORTED')
        ? EXIT.USAGE
        : EXIT.FAILURE;
    const revoked = revokedSerial ? ` (serial ${revokedSerial} was revoked; its replacement failed)` : '';
    return { code, stdout: '', stderr: `certkeeper revoke: ${describe(error)}${revoked}\n` };
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
