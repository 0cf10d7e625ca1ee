/**
 * `certkeeper agent`: the sidecar / host daemon. Runs in the foreground until SIGTERM or SIGINT
 * (exit 0 once every manager has stopped), reloads its configuration on SIGHUP (a configuration
 * that cannot be loaded is refused and logged; the running one goes on), logs one line per event
 * to standard error, and answers /healthz, /readyz and /status/ on an optional port. `--once`
 * renews what is due and exits (agent/once.ts).
 */
import { parseArgs } from 'node:util';
import { Agent, MANAGER_EVENTS } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import { loadAgentConfig } from '../agent/config-file.js';
import { type HealthServer, startHealthServer } from '../agent/health-server.js';
import { renewDue } from '../agent/once.js';
import { openAgentStore } from '../agent/store.js';
import { isCertkeeperError } from '../errors.js';
import { createConsoleLogger, type LogFormat, type Logger, type LogLevel } from '../logger.js';
import type { ObservedManager } from '../ops/observer.js';
import { type CliContext, type CommandResult, describe, EXIT, ok, parseError, usage } from './command.js';

export const AGENT_USAGE = `Usage: certkeeper agent --config <file> [options]

Keeps the certificates of a configuration file (YAML or JSON) issued, renewed, stored and
deployed to their targets, in the foreground. SIGTERM or SIGINT stop it cleanly (exit 0),
SIGHUP reloads the configuration (a file that does not load is refused, the running
configuration goes on). One log line per event on standard error. See docs/agent.md.

Options:
  -c, --config <file>       the configuration file (default: $CERTKEEPER_CONFIG)
      --once                renew what is due, then exit (cron, systemd timers)
      --health-port <port>  answer /healthz, /readyz and /status/ on this port (overrides health.port)
      --health-host <addr>  the address to listen on (default: health.host, else 0.0.0.0)
      --log-format <fmt>    logfmt (default) or json ($CERTKEEPER_LOG_FORMAT)
      --log-level <level>   debug, info (default), warn or error
  -h, --help                this help

Environment: CERTKEEPER__<SETTING>__<SETTING>=value overrides a setting; <setting>File reads a
secret from a file (see docs/agent.md).

Exit codes of --once:
  0  every certificate is valid; nothing due failed
  1  a renewal failed; every certificate still has a valid one
  3  a certificate is missing or expired after the run
  2  usage, or a configuration that does not load
The daemon exits 0 after a clean stop, 2 when its configuration does not load, 1 on failure.
`;

const LEVEL_OF: Partial<Record<string, LogLevel>> = {
  renewalFailed: 'warn',
  rolledBack: 'warn',
  liveVerifyFailed: 'warn',
  storedInvalid: 'warn',
  expiring: 'warn',
  obtaining: 'debug',
};

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      once: { type: 'boolean' },
      'health-port': { type: 'string' },
      'health-host': { type: 'string' },
      'log-format': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

const configFailure = (error: unknown): CommandResult => ({
  code:
    isCertkeeperError(error, 'INVALID_OPTION') || isCertkeeperError(error, 'NOT_SUPPORTED')
      ? EXIT.USAGE
      : EXIT.FAILURE,
  stdout: '',
  stderr: `certkeeper agent: ${describe(error)}\n`,
});

export async function agentCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (error) {
    return parseError('agent', error, AGENT_USAGE);
  }
  if (values.help) return ok(AGENT_USAGE);
  const path = values.config ?? ctx.env.CERTKEEPER_CONFIG;
  if (!path) return usage('agent', '--config is required', AGENT_USAGE);
  const format = values['log-format'] ?? ctx.env.CERTKEEPER_LOG_FORMAT ?? 'logfmt';
  if (format !== 'logfmt' && format !== 'json')
    return usage('agent', '--log-format must be logfmt or json', AGENT_USAGE);
  const level = values['log-level'] ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    return usage('agent', '--log-level must be debug, info, warn or error', AGENT_USAGE);
  let healthPort: number | undefined;
  if (values['health-port'] !== undefined) {
    healthPort = Number(values['health-port']);
    if (!/^\d+$/.test(values['health-port']) || healthPort > 65_535)
      return usage('agent', '--health-port must be a port number (0: any free port)', AGENT_USAGE);
  }
  const logger = createConsoleLogger({
    format: format as LogFormat,
    level: level as LogLevel,
    write: (line) => process.stderr.write(line),
  });
  const load = () => loadAgentConfig(path, { env: ctx.env, cwd: ctx.cwd });
  let config: AgentConfig;
  let agent: Agent;
  try {
    config = load();
    const store = openAgentStore(config.store, ctx.cwd, logger);
    agent = new Agent(config, { store, logger, keepAlive: !values.once });
  } catch (error) {
    return configFailure(error);
  }
  for (const name of MANAGER_EVENTS) {
    const at = LEVEL_OF[name] ?? 'info';
    agent.on(name, (fields: object) => logger[at](name, { event: name, ...fields }));
  }
  return values.once ? once(agent, logger, ctx) : daemon(agent, logger, load, values, healthPort);
}

async function once(agent: Agent, logger: Logger, ctx: CliContext): Promise<CommandResult> {
  try {
    await agent.start();
    const report = await renewDue(agent, ctx.now);
    logger.info('once: done', { ...report });
    return { code: report.code, stdout: `${JSON.stringify(report)}\n`, stderr: '' };
  } catch (error) {
    return { code: EXIT.FAILURE, stdout: '', stderr: `certkeeper agent: ${describe(error)}\n` };
  } finally {
    await agent.stop();
  }
}

async function daemon(
  agent: Agent,
  logger: Logger,
  load: () => AgentConfig,
  values: ReturnType<typeof parse>['values'],
  healthPort: number | undefined,
): Promise<CommandResult> {
  let health: HealthServer | undefined;
  const signals: [NodeJS.Signals, () => void][] = [];
  let stopped!: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    stopped = resolve;
  });
  // Signals first: a SIGTERM during start-up (a container stopped at once) still stops cleanly.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('agent: stopping', { signal });
    await health?.close().catch(() => {});
    await agent.stop();
    logger.info('agent: stopped', { signal });
    stopped(EXIT.OK);
  };
  let reloading = Promise.resolve();
  const reload = () => {
    reloading = reloading.then(async () => {
      if (stopping) return;
      try {
        const changes = await agent.reload(load());
        logger.info('agent: configuration reloaded', { file: agent.config.file, ...changes });
      } catch (error) {
        logger.error('agent: configuration reload refused; the running configuration goes on', {
          code: isCertkeeperError(error) ? error.code : undefined,
          error,
        });
      }
    });
  };
  signals.push(
    ['SIGTERM', () => void stop('SIGTERM')],
    ['SIGINT', () => void stop('SIGINT')],
    ['SIGHUP', reload],
  );
  for (const [signal, handler] of signals) process.on(signal, handler);
  try {
    const port = healthPort ?? agent.config.health?.port;
    if (port !== undefined) {
      const host = values['health-host'] ?? agent.config.health?.host ?? '0.0.0.0';
      health = await startHealthServer(agent as unknown as ObservedManager, port, host);
      logger.info('agent: health listening', { port: health.port, host });
    }
    await agent.start();
    logger.info('agent: started', {
      file: agent.config.file,
      certificates: agent.status().map((s) => s.id),
    });
    return { code: await done, stdout: '', stderr: '' };
  } catch (error) {
    logger.error('agent: could not start', {
      code: isCertkeeperError(error) ? error.code : undefined,
      error,
    });
    await health?.close().catch(() => {});
    await agent.stop();
    return { code: EXIT.FAILURE, stdout: '', stderr: `certkeeper agent: ${describe(error)}\n` };
  } finally {
    for (const [signal, handler] of signals) process.off(signal, handler);
  }
}
