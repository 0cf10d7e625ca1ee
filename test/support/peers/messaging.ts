// NATS and Mosquitto as real peers: throwaway instances with a TLS listener on a free loopback
// port, configuration in a temp dir, reloaded by SIGHUP through their pidfiles.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mosquittoReload, natsReload } from '../../../src/deploy/reload/recipes/signals.js';
import { findTool, requireTools } from '../system-tools.js';
import { freePort, listening, startPeer, tempDir } from './process.js';
import type { ServiceDefinition } from './web.js';

const have = (tools: string[], pkg: string, name: string) =>
  requireTools(tools, pkg, `${name} deploy tests`) !== null;

export const nats: ServiceDefinition = {
  name: 'nats',
  files: {},
  available: () => have(['nats-server'], 'nats-server', 'NATS'),
  async start(dir) {
    const work = tempDir('nats');
    const port = await freePort();
    const config = join(work, 'nats.conf');
    writeFileSync(
      config,
      `listen: "127.0.0.1:${port}"
pid_file: "${work}/nats.pid"
tls {
  cert_file: "${dir}/fullchain.pem"
  key_file: "${dir}/privkey.pem"
}
`,
    );
    const peer = await startPeer({
      name: 'nats',
      argv: [findTool('nats-server')!, '-c', config],
      ready: () => listening(port),
    });
    return {
      name: 'nats',
      peer,
      port,
      protocol: 'nats',
      ping: 'nats',
      reload: [natsReload({ pidFile: `${work}/nats.pid` })],
    };
  },
};

function mosquittoUser(): { uid: number; gid: number } | undefined {
  const id = (flag: string) =>
    Number(spawnSync('id', [flag, 'mosquitto'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  return Number.isInteger(uid) && uid > 0 ? { uid, gid: id('-g') } : undefined;
}

export const mosquitto: ServiceDefinition = {
  name: 'mosquitto',
  files: {},
  // Mosquitto drops root to its own user after start-up; a reload re-reads the key as that user.
  get owner() {
    return mosquittoUser();
  },
  available: () => have(['mosquitto'], 'mosquitto', 'Mosquitto'),
  async start(dir) {
    // Its pidfile is written after it dropped root, as its own user.
    const work = tempDir('mosquitto', mosquittoUser());
    const port = await freePort();
    const config = join(work, 'mosquitto.conf');
    writeFileSync(
      config,
      `pid_file ${work}/mosquitto.pid
persistence false
log_dest stderr
listener ${port} 127.0.0.1
allow_anonymous true
certfile ${dir}/fullchain.pem
keyfile ${dir}/privkey.pem
`,
    );
    const peer = await startPeer({
      name: 'mosquitto',
      argv: [findTool('mosquitto')!, '-c', config],
      ready: () => listening(port),
    });
    return {
      name: 'mosquitto',
      peer,
      port,
      protocol: 'tls',
      ping: 'mqtt',
      reload: [mosquittoReload({ pidFile: `${work}/mosquitto.pid` })],
    };
  },
};
