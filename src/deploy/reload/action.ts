/**
 * The reload contract: what a file target runs after it flipped a certificate's file set, so the
 * service that reads those files takes the new certificate. Actions compose: a target runs its
 * list in order and stops at the first failure (`DEPLOY_FAILED`).
 */
import { isCertkeeperError } from '../../errors.js';
import type { FileSetPaths } from '../files/layout.js';

/** What an action is told about the set it reloads. */
export interface ReloadContext {
  /** The managed certificate id. */
  readonly id: string;
  /** SHA-256 of the leaf now in the files (lowercase hex). */
  readonly fingerprint256: string;
  /** The stable paths readers use (through the set's live link), by file kind. */
  readonly paths: FileSetPaths;
  /**
   * The same files inside this version's own directory: their content never changes while they
   * exist (read these when the service is handed content rather than told to re-read a path).
   */
  readonly versionPaths: FileSetPaths;
  readonly signal: AbortSignal;
}

/** One step that makes a service pick up the files: a signal, a command, a request, an admin API. */
export interface ReloadAction {
  /** Short and secret-free (`nginx -s reload`, `SIGHUP to /run/x.pid`): appears in errors. */
  readonly description: string;
  /** Throws `DEPLOY_FAILED` (never with key material in it) when the service refused. */
  run(context: ReloadContext): Promise<void>;
}

/**
 * Whether a reload failed because its service does not run (no pidfile, no such process): on a
 * first deploy that is not a failure — the service reads the files when it starts — and the file
 * target then has nothing to verify (a sidecar's files are written before nginx can start).
 */
export function serviceNotRunning(error: unknown): boolean {
  return isCertkeeperError(error, 'DEPLOY_FAILED') && error.details.notRunning === true;
}
