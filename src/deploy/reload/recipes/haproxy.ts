/**
 * HAProxy's runtime API: the new certificate is handed to the running process and swapped in
 * memory, with no reload at all (no new workers, no connection touched):
 *
 *   set ssl cert <name> <<\n<key and chain PEM>\n\n   opens a transaction holding the new one
 *   commit ssl cert <name>                              swaps it into every bind line using it
 *
 * `<name>` is the certificate exactly as the `crt` argument of the configuration names it. The
 * content is the set's combined file (HAProxy wants key and chain in one PEM), read from this
 * version's own directory; since the same file is on disk, a later restart loads it too. Each
 * command goes on its own connection (the API's non-interactive mode answers one and closes).
 */
import { readFile } from 'node:fs/promises';
import { CertkeeperError, describeCause, optionError, scrubSecrets } from '../../../errors.js';
import type { ReloadAction } from '../action.js';
import { describeEndpoint, exchange, type StreamEndpoint } from './stream.js';

export interface HaproxyOptions {
  /** The admin socket (`stats socket <path> level admin`), or host/port of a TCP one. */
  socket: StreamEndpoint;
  /** The name HAProxy knows the certificate by. Default: the set's stable combined path. */
  certificate?: string;
  /** Per command. Default 10 000 ms. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Swaps the certificate in a running HAProxy through its runtime API. */
export function haproxyRuntimeApi(options: HaproxyOptions): ReloadAction {
  const owner = 'haproxyRuntimeApi';
  const socket = options?.socket;
  if (
    typeof socket !== 'object' ||
    socket === null ||
    (socket.path === undefined && socket.port === undefined)
  ) {
    throw optionError('socket', 'must give path (a Unix socket) or host and port', owner);
  }
  if (
    options.certificate !== undefined &&
    (typeof options.certificate !== 'string' || /\s/.test(options.certificate))
  ) {
    throw optionError('certificate', 'must be the crt path as HAProxy names it (no spaces)', owner);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const description = `haproxy set ssl cert via ${describeEndpoint(socket)}`;
  const command = async (text: string, signal: AbortSignal) => {
    try {
      const answer = await exchange(socket, text, () => false, timeoutMs, signal);
      return answer.toString('utf8');
    } catch (error) {
      throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} failed: ${describeCause(error)}`, {
        details: { reload: description },
      });
    }
  };
  return {
    description,
    async run(context) {
      const file = context.versionPaths.combined;
      if (!file) {
        throw new CertkeeperError(
          'DEPLOY_FAILED',
          `reload ${description} needs the combined file (files.combined)`,
          {
            details: { reload: description },
          },
        );
      }
      const name = options.certificate ?? context.paths.combined!;
      const pem = (await readFile(file, 'utf8')).trim();
      const set = await command(`set ssl cert ${name} <<\n${pem}\n\n`, context.signal);
      if (!/Transaction (created|updated)/i.test(set)) {
        await command(`abort ssl cert ${name}\n`, context.signal).catch(() => {});
        fail(description, 'set ssl cert', set);
      }
      const commit = await command(`commit ssl cert ${name}\n`, context.signal);
      if (!/Success!/.test(commit)) fail(description, 'commit ssl cert', commit);
    },
  };
}

function fail(description: string, step: string, answer: string): never {
  const shown = scrubSecrets(answer.trim()).slice(0, 1024);
  throw new CertkeeperError('DEPLOY_FAILED', `reload ${description}: ${step} refused: ${shown}`, {
    details: { reload: description, step, output: shown },
  });
}
