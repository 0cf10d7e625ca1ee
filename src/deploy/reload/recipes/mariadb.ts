/**
 * MariaDB (10.4 and later) re-reads its TLS certificate, key and CA with `FLUSH SSL`; MySQL 8
 * spells it `ALTER INSTANCE RELOAD TLS`. Open connections keep their session; new ones get the
 * new certificate. The statement is run with the server's own command-line client (the one that
 * ships beside the server), so certkeeper needs no MySQL driver; a failing statement makes the
 * client exit non-zero, which is `DEPLOY_FAILED` with its message.
 */
import { readFile } from 'node:fs/promises';
import { CertkeeperError, describeCause, optionError } from '../../../errors.js';
import type { ReloadAction } from '../action.js';
import { assertSucceeded, runCommand } from '../command.js';

export interface MariadbOptions {
  /** Default `mariadb` (`mysql` for MySQL). */
  client?: string;
  /** The server's Unix socket; or host and port. */
  socket?: string;
  host?: string;
  port?: number;
  /** Default `root`. */
  user?: string;
  /** Read at each reload and passed in the client's environment, never on its command line. */
  passwordFile?: string;
  /** Default `FLUSH SSL` (MariaDB); `ALTER INSTANCE RELOAD TLS` for MySQL 8. */
  statement?: 'FLUSH SSL' | 'ALTER INSTANCE RELOAD TLS';
  timeoutMs?: number;
}

/** Runs FLUSH SSL (or ALTER INSTANCE RELOAD TLS) with the server's client. */
export function mariadbReload(options: MariadbOptions = {}): ReloadAction {
  const owner = 'mariadbReload';
  if (options.socket === undefined && options.port === undefined) {
    throw optionError('socket', 'or port must be given', owner);
  }
  const statement = options.statement ?? 'FLUSH SSL';
  if (statement !== 'FLUSH SSL' && statement !== 'ALTER INSTANCE RELOAD TLS') {
    throw optionError('statement', 'must be FLUSH SSL or ALTER INSTANCE RELOAD TLS', owner);
  }
  const argv = [options.client ?? 'mariadb', `--user=${options.user ?? 'root'}`, '--batch'];
  if (options.socket !== undefined) argv.push('--protocol=socket', `--socket=${options.socket}`);
  else argv.push('--protocol=tcp', `--host=${options.host ?? '127.0.0.1'}`, `--port=${options.port}`);
  argv.push('-e', statement);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    description: statement,
    async run(context) {
      const env: Record<string, string> = {};
      if (options.passwordFile !== undefined) {
        try {
          env.MYSQL_PWD = (await readFile(options.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        } catch (error) {
          throw new CertkeeperError(
            'DEPLOY_FAILED',
            `reload ${statement}: password file unreadable: ${describeCause(error)}`,
          );
        }
      }
      assertSucceeded(
        await runCommand(argv, { env, timeoutMs, signal: context.signal }),
        statement,
        timeoutMs,
      );
    },
  };
}
