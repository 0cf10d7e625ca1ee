/**
 * Redis (6 and later) rebuilds its TLS context when a `tls-*` file setting is set with CONFIG
 * SET — also to the value it already has (measured with Redis 7.0: the stable paths are set
 * again and the new files are loaded). Open connections keep their context. A certificate Redis
 * cannot load is refused with an error reply and the old one stays. Redis is left configured
 * with the set's stable paths, so a CONFIG REWRITE or a restart loads the same files.
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
      if (!fullchain || !privkey) {
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} needs fullchain and privkey files`);
      }
      const requests: string[] = [];
      if (options.passwordFile !== undefined) {
        const password = (await readFile(options.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        requests.push(
          options.username ? command('AUTH', options.username, password) : command('AUTH', password),
        );
      }
      requests.push(command('CONFIG', 'SET', 'tls-cert-file', fullchain, 'tls-key-file', privkey));
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
