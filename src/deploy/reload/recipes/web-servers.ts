/**
 * nginx and Apache: test the configuration (which loads the certificate files and checks that
 * key and certificate match), then ask the running master for a graceful reload. The test step
 * matters: `nginx -s reload` and `apache2 -k graceful` only signal the master and exit 0 even
 * when the master then refuses the new configuration and keeps serving the old certificate.
 *
 * Both reloads are graceful: the master starts new workers with the new certificate, and old
 * workers finish the connections they hold (keep-alive included) with the old one.
 */
import { optionError } from '../../../errors.js';
import type { ReloadAction } from '../action.js';
import { assertSucceeded, runCommand } from '../command.js';

export interface NginxOptions {
  /** Default `nginx` (from PATH). */
  binary?: string;
  /** `-c`: the configuration file the running master was started with. */
  config?: string;
  /** `-p`: the prefix path, when the master was started with one. */
  prefix?: string;
  /** Per command. Default 30 000 ms. */
  timeoutMs?: number;
}

export interface ApacheOptions {
  /** Default `apache2` (Debian; `httpd` elsewhere). */
  binary?: string;
  /** `-f`: the configuration file the running server was started with. */
  config?: string;
  /** `-d`: the ServerRoot. */
  serverRoot?: string;
  /** Added to the environment (Debian's apache2.conf reads APACHE_RUN_DIR and friends). */
  env?: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

function checked(owner: string, options: { binary?: string; timeoutMs?: number } | undefined): void {
  if (options?.binary !== undefined && (typeof options.binary !== 'string' || options.binary === '')) {
    throw optionError('binary', 'must be a program name or path', owner);
  }
  const t = options?.timeoutMs;
  if (t !== undefined && !(Number.isInteger(t) && t > 0))
    throw optionError('timeoutMs', 'must be a positive integer (ms)', owner);
}

/** Runs each argv in turn; the first that fails is the error. */
function steps(
  description: string,
  argvs: string[][],
  timeoutMs: number,
  env?: Readonly<Record<string, string>>,
): ReloadAction {
  return {
    description,
    async run(context) {
      for (const argv of argvs) {
        const result = await runCommand(argv, { timeoutMs, env, signal: context.signal });
        assertSucceeded(
          result,
          argv.slice(1).join(' ') ? `${description} (${argv.join(' ')})` : description,
          timeoutMs,
        );
      }
    },
  };
}

/** `nginx -t` then `nginx -s reload`, with the running master's `-c` / `-p`. */
export function nginxReload(options: NginxOptions = {}): ReloadAction {
  checked('nginxReload', options);
  const base = [options.binary ?? 'nginx'];
  if (options.prefix) base.push('-p', options.prefix);
  if (options.config) base.push('-c', options.config);
  return steps(
    'nginx -s reload',
    [
      [...base, '-t', '-q'],
      [...base, '-s', 'reload'],
    ],
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  );
}

/** `apache2 -t` then `apache2 -k graceful`, with the running server's `-f` / `-d`. */
export function apacheReload(options: ApacheOptions = {}): ReloadAction {
  checked('apacheReload', options);
  const base = [options.binary ?? 'apache2'];
  if (options.serverRoot) base.push('-d', options.serverRoot);
  if (options.config) base.push('-f', options.config);
  return steps(
    'apache graceful',
    [
      [...base, '-t'],
      [...base, '-k', 'graceful'],
    ],
    options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    options.env,
  );
}
