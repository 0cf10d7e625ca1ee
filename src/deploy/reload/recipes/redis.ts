/**
 * Redis (6 and later) re-creates its TLS context when a `tls-*` setting is changed with CONFIG
 * SET; open connections keep theirs. It applies a setting only when the value differs from the
 * current one, so setting the same stable paths again reloads nothing. The action therefore sets
 * the paths of this version's own directory (the files are loaded from there), then the stable
 * paths again (loaded once more, the same files): Redis ends up configured with paths that stay
 * valid after old versions are pruned, and a CONFIG REWRITE saves those. A certificate Redis
 * cannot load is refused with an error reply and the old one stays.
 */
import { readFile } from 'node:fs/promises';
import { CertkeeperError, describeCause, optionError, scrubSecrets } from '../../../errors.js';
import type { ReloadAction } from '../action.js';
import { describeEndpoint, exchange, type StreamEndpoint } from './stream.js';

export interface RedisOptions {
  /** How to reach Redis: a Unix socket, its plain port, or its TLS port (`tls: {...}`). */
  endpoint: StreamEndpoint;
  username?: string;
  /** Read at each reload (a Docker secret); never kept in options as text. */
  passwordFile?: string;
  /** Per command. Default 10 000 ms. */
  timeoutMs?: number;
}

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Whether `data` holds `count` complete simple replies (`+`, `-`, `:` lines). */
function replies(data: Buffer, count: number): boolean {
  return data.toString('utf8').split('\r\n').length - 1 >= count;
}

/** Reloads Redis's TLS certificate with CONFIG SET. */
export function redisReload(options: RedisOptions): ReloadAction {
  const owner = 'redisReload';
  const endpoint = options?.endpoint;
  if (
    typeof endpoint !== 'object' ||
    endpoint === null ||
    (endpoint.path === undefined && endpoint.port === undefined)
  ) {
    throw optionError('endpoint', 'must give path (a Unix socket) or host and port', owner);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const description = `redis CONFIG SET tls-cert-file via ${describeEndpoint(endpoint)}`;
  return {
    description,
    async run(context) {
      const { fullchain, privkey } = context.paths;
      const version = context.versionPaths;
      if (!fullchain || !privkey || !version.fullchain || !version.privkey) {
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} needs fullchain and privkey files`);
      }
      const requests: string[] = [];
      if (options.passwordFile !== undefined) {
        const password = (await readFile(options.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        requests.push(
          options.username ? command('AUTH', options.username, password) : command('AUTH', password),
        );
      }
      const set = (cert: string, key: string) =>
        command('CONFIG', 'SET', 'tls-cert-file', cert, 'tls-key-file', key);
      requests.push(set(version.fullchain, version.privkey), set(fullchain, privkey));
      let answer: string;
      try {
        const data = await exchange(
          endpoint,
          requests.join(''),
          (d) => replies(d, requests.length),
          timeoutMs,
          context.signal,
        );
        answer = data.toString('utf8');
      } catch (error) {
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} failed: ${describeCause(error)}`, {
          details: { reload: description },
        });
      }
      const lines = answer.split('\r\n').slice(0, requests.length);
      const refused = lines.find((line) => !line.startsWith('+OK'));
      if (lines.length < requests.length || refused !== undefined) {
        const shown = scrubSecrets(refused ?? answer).slice(0, 512);
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} refused: ${shown}`, {
          details: { reload: description, output: shown },
        });
      }
    },
  };
}
