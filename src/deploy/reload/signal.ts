/**
 * Reload by signal: the way nginx, PostgreSQL, NATS and Mosquitto are told to re-read their
 * configuration and certificates. The pid is given or read from a pidfile at each reload (a
 * restarted service has a new pid); a missing or stale pidfile is `DEPLOY_FAILED`, since a
 * signal that reached nobody reloaded nothing — marked `notRunning` (see serviceNotRunning), which
 * a file target's first deploy accepts.
 */
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import type { ReloadAction } from './action.js';

export interface SignalOptions {
  pid?: number;
  /** Read at each reload; its first line is the pid (nginx, PostgreSQL's postmaster.pid, NATS). */
  pidFile?: string;
  /** Default SIGHUP. */
  signal?: NodeJS.Signals;
}

async function readPid(pidFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CertkeeperError('DEPLOY_FAILED', `pidfile ${pidFile} unreadable: ${describeCause(error)}`, {
      details: { pidFile, ...(missing && { notRunning: true }) },
    });
  }
  const pid = Number(text.split('\n')[0]!.trim());
  if (!Number.isInteger(pid) || pid <= 1) {
    throw new CertkeeperError('DEPLOY_FAILED', `pidfile ${pidFile} holds no pid`, { details: { pidFile } });
  }
  return pid;
}

/** A reload action that sends a signal. */
export function signalReload(options: SignalOptions): ReloadAction {
  const owner = 'signalReload';
  if ((options?.pid === undefined) === (options?.pidFile === undefined)) {
    throw optionError('pid', 'or pidFile must be given (exactly one)', owner);
  }
  if (options.pid !== undefined && !(Number.isInteger(options.pid) && options.pid > 1)) {
    throw optionError('pid', 'must be a process id', owner);
  }
  const signal = options.signal ?? 'SIGHUP';
  if (!(signal in constants.signals)) throw optionError('signal', 'must be a signal name (SIGHUP)', owner);
  const description = `${signal} to ${options.pidFile ?? `pid ${options.pid}`}`;
  return {
    description,
    async run() {
      const pid = options.pid ?? (await readPid(options.pidFile!));
      try {
        process.kill(pid, signal);
      } catch (error) {
        const gone = (error as NodeJS.ErrnoException).code === 'ESRCH';
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} failed: ${describeCause(error)}`, {
          details: { reload: description, pid, ...(gone && { notRunning: true }) },
        });
      }
    },
  };
}
