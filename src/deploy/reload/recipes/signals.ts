/**
 * Services that re-read their TLS files on SIGHUP: PostgreSQL (what `pg_reload_conf()` does:
 * the postmaster re-reads its configuration and the SSL files, and new connections use them),
 * NATS (`nats-server --signal reload` sends the same signal) and Mosquitto (2.0 reloads listener
 * certificates on SIGHUP). Each keeps its open connections; what each does with a certificate
 * it cannot load differs (see docs/deploy.md) — which is why a live check follows.
 */
import { join } from 'node:path';
import { CertkeeperError, describeCause, optionError } from '../../../errors.js';
import type { ReloadAction } from '../action.js';
import { signalReload } from '../signal.js';

export interface PidOptions {
  pid?: number;
  pidFile?: string;
}

export interface PostgresOptions extends PidOptions {
  /** The cluster's data directory: its `postmaster.pid` names the postmaster. */
  dataDir?: string;
  /**
   * A connection (a pg `Client` or `Pool`, or anything with `query`) of a superuser or a role
   * granted `pg_reload_conf`: for when certkeeper cannot signal the server (another container).
   */
  client?: { query(sql: string): Promise<unknown> };
}

/** SIGHUP to PostgreSQL's postmaster, or `SELECT pg_reload_conf()` over a connection you give. */
export function postgresReload(options: PostgresOptions): ReloadAction {
  const given = [options?.dataDir, options?.pid, options?.pidFile, options?.client].filter(
    (v) => v !== undefined,
  );
  if (given.length !== 1)
    throw optionError('dataDir', 'or pid, pidFile or client must be given (exactly one)', 'postgresReload');
  const { client } = options;
  if (client !== undefined) {
    if (typeof client.query !== 'function')
      throw optionError('client', 'must have a query(sql) method', 'postgresReload');
    return {
      description: 'SELECT pg_reload_conf()',
      async run() {
        try {
          await client.query('SELECT pg_reload_conf()');
        } catch (error) {
          throw new CertkeeperError(
            'DEPLOY_FAILED',
            `reload pg_reload_conf() failed: ${describeCause(error)}`,
            {
              details: { reload: 'SELECT pg_reload_conf()' },
            },
          );
        }
      },
    };
  }
  const pidFile = options.dataDir !== undefined ? join(options.dataDir, 'postmaster.pid') : options.pidFile;
  return signalReload({ pid: options.pid, pidFile });
}

/** SIGHUP to nats-server (its `--signal reload`). */
export function natsReload(options: PidOptions): ReloadAction {
  return signalReload({ pid: options?.pid, pidFile: options?.pidFile });
}

/** SIGHUP to mosquitto. */
export function mosquittoReload(options: PidOptions): ReloadAction {
  return signalReload({ pid: options?.pid, pidFile: options?.pidFile });
}
