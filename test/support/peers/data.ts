// Redis (a second, throwaway instance with a TLS port), PostgreSQL (a throwaway cluster from
// initdb, ssl = on) and MariaDB (a throwaway datadir) as real peers, each on a free loopback
// port with its configuration in a temp dir. The shared Redis and PostgreSQL are not touched.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { mariadbReload } from '../../../src/deploy/reload/recipes/mariadb.js';
import { redisReload } from '../../../src/deploy/reload/recipes/redis.js';
import { postgresReload } from '../../../src/deploy/reload/recipes/signals.js';
import { findTool, requireTools } from '../system-tools.js';
import { freePort, listening, startPeer, tempDir } from './process.js';
import type { ServiceDefinition } from './web.js';

const have = (tools: string[], pkg: string, name: string) =>
  requireTools(tools, pkg, `${name} deploy tests`) !== null;

export const redis: ServiceDefinition = {
  name: 'redis',
  files: {},
  available: () => have(['redis-server'], 'redis-server', 'Redis TLS'),
  async start(dir) {
    const work = tempDir('redis');
    const port = await freePort();
    const socket = join(work, 'redis.sock');
    const peer = await startPeer({
      name: 'redis',
      argv: [
        findTool('redis-server')!,
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--unixsocket',
        socket,
        '--unixsocketperm',
        '700',
        '--tls-cert-file',
        `${dir}/fullchain.pem`,
        '--tls-key-file',
        `${dir}/privkey.pem`,
        '--tls-auth-clients',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        work,
      ],
      ready: () => listening(port),
    });
    return {
      name: 'redis',
      peer,
      port,
      protocol: 'tls',
      ping: 'redis',
      reload: [redisReload({ endpoint: { path: socket } })],
    };
  },
};

const POSTGRES = { uid: 101, gid: 104 };

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  return Number.isInteger(uid) && uid > 0 ? { uid, gid: id('-g') } : POSTGRES;
}

export const postgres: ServiceDefinition = {
  name: 'postgresql',
  files: {},
  get owner() {
    return postgresUser();
  },
  available: () => have(['initdb', 'postgres'], 'postgresql', 'PostgreSQL'),
  async start(dir) {
    const user = postgresUser();
    const work = tempDir('postgres', user);
    const data = join(work, 'data');
    const init = spawnSync(findTool('initdb')!, ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync'], {
      uid: user.uid,
      gid: user.gid,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stdout}${init.stderr}`);
    const port = await freePort();
    const peer = await startPeer({
      name: 'postgres',
      uid: user.uid,
      gid: user.gid,
      argv: [
        findTool('postgres')!,
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        work,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'ssl=on',
        '-c',
        `ssl_cert_file=${dir}/fullchain.pem`,
        '-c',
        `ssl_key_file=${dir}/privkey.pem`,
        '-c',
        'fsync=off',
      ],
      ready: () => listening(port),
      readyMs: 60_000,
    });
    return {
      name: 'postgresql',
      peer,
      port,
      protocol: 'postgres',
      reload: [postgresReload({ dataDir: data })],
    };
  },
};

export const mariadb: ServiceDefinition = {
  name: 'mariadb',
  files: {},
  available: () => have(['mariadbd', 'mariadb-install-db', 'mariadb'], 'mariadb-server', 'MariaDB'),
  async start(dir) {
    const work = tempDir('mariadb');
    const data = join(work, 'data');
    mkdirSync(data);
    const common = ['--no-defaults', `--datadir=${data}`, '--user=root'];
    const init = spawnSync(
      findTool('mariadb-install-db')!,
      [...common, '--skip-test-db', '--auth-root-authentication-method=socket'],
      { encoding: 'utf8', timeout: 180_000 },
    );
    if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stdout}${init.stderr}`);
    const port = await freePort();
    const socket = join(work, 'mariadb.sock');
    const peer = await startPeer({
      name: 'mariadb',
      argv: [
        findTool('mariadbd')!,
        ...common,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${socket}`,
        `--pid-file=${work}/mariadb.pid`,
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        `--ssl-cert=${dir}/fullchain.pem`,
        `--ssl-key=${dir}/privkey.pem`,
      ],
      ready: () => listening(port),
      readyMs: 60_000,
    });
    return {
      name: 'mariadb',
      peer,
      port,
      protocol: 'mysql',
      reload: [mariadbReload({ client: findTool('mariadb')!, socket })],
    };
  },
};
