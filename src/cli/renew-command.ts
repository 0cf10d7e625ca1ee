/**
 * `certkeeper renew <id>…|--all --config <file>`: renews certificates of an agent configuration
 * now, through their configured issuers, whatever their schedule; stored under the store lock,
 * so a running agent sharing the store adopts the new certificate.
 */
import { parseArgs } from 'node:util';
import { withAgent } from '../agent/open.js';
import { isCertkeeperError } from '../errors.js';
import { createConsoleLogger } from '../logger.js';
import { type CliContext, type CommandResult, describe, EXIT, ok, parseError, usage } from './command.js';

export const RENEW_USAGE = `Usage: certkeeper renew (<id>... | --all) --config <file>

Renews certificates of an agent configuration now, through their configured issuers, and
stores them (under the store lock: a running agent or replica sharing the store adopts them).

Options:
  -c, --config <file>   the agent's configuration file (default: $CERTKEEPER_CONFIG)
      --all             every certificate of the configuration
      --json            the result as JSON
  -h, --help            this help

Exit codes: 0 renewed, 1 a renewal failed (the previous certificate stays), 2 usage or a
configuration that does not load.
`;

export async function renewCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return parseError('renew', error, RENEW_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) return ok(RENEW_USAGE);
  const path = values.config ?? ctx.env.CERTKEEPER_CONFIG;
  if (!path) return usage('renew', '--config is required', RENEW_USAGE);
  if (Boolean(values.all) === positionals.length > 0)
    return usage('renew', 'give certificate ids or --all', RENEW_USAGE);
  const logger = createConsoleLogger({ level: 'warn', write: (line) => process.stderr.write(line) });
  try {
    const results = await withAgent(path, { env: ctx.env, cwd: ctx.cwd, logger }, async (agent) => {
      const ids = values.all ? agent.status().map((s) => s.id) : positionals;
      for (const id of ids) agent.managerOf(id);
      const before = new Map(agent.status().map((s) => [s.id, s.serial]));
      const settled = await Promise.allSettled(ids.map((id) => agent.managerOf(id).renewNow(id)));
      const after = new Map(agent.status().map((s) => [s.id, s.serial]));
      return ids.map((id, i) => {
        const r = settled[i]!;
        return r.status === 'fulfilled'
          ? { id, renewed: true, serial: after.get(id) ?? null, previousSerial: before.get(id) ?? null }
          : {
              id,
              renewed: false,
              error: describe(r.reason),
              code: isCertkeeperError(r.reason) ? r.reason.code : null,
            };
      });
    });
    const code = results.every((r) => r.renewed) ? EXIT.OK : EXIT.FAILURE;
    if (values.json) return { code, stdout: `${JSON.stringify(results, null, 2)}\n`, stderr: '' };
    const lines = results.map((r) =>
      r.renewed
        ? `renewed ${r.id}: serial ${r.serial}${r.previousSerial ? ` (was ${r.previousSerial})` : ''}`
        : `not renewed ${r.id}: ${r.error}`,
    );
    return { code, stdout: `${lines.join('\n')}\n`, stderr: '' };
  } catch (error) {
    const code =
      isCertkeeperError(error, 'INVALID_OPTION') || isCertkeeperError(error, 'NOT_SUPPORTED')
        ? EXIT.USAGE
        : EXIT.FAILURE;
    return { code, stdout: '', stderr: `certkeeper renew: ${describe(error)}\n` };
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
