// nginx, Apache and HAProxy as real peers: each with its own configuration in a temp dir,
// listening with TLS on a free loopback port, reading the certificate set in `dir`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileSetSpec } from '../../../src/deploy/files/layout.js';
import type { ReloadAction } from '../../../src/deploy/reload/action.js';
import { haproxyRuntimeApi } from '../../../src/deploy/reload/recipes/haproxy.js';
import { apacheReload, nginxReload } from '../../../src/deploy/reload/recipes/web-servers.js';
import type { Protocol } from '../../../src/deploy/verify/preambles.js';
import { probeOnce } from '../../../src/deploy/verify/probe.js';
import { findTool, requireTools } from '../system-tools.js';
import { freePort, listening, type Peer, startPeer, tempDir } from './process.js';

export interface ServicePeer {
  name: string;
  peer: Peer;
  port: number;
  protocol: Protocol;
  /** Sends one request on an established connection and says whether it was answered (HTTP, PING). */
  ping?: 'http' | 'redis' | 'nats' | 'mqtt';
  reload: ReloadAction[];
  /** Its configuration file, for tests that break it. */
  config?: string;
}

/** A service under test: which files it reads, and how to start it reading them from `dir`. */
export interface ServiceDefinition {
  name: string;
  files: FileSetSpec;
  /** Owner of the set's files, for services that drop root and read the key as their own user. */
  readonly owner?: { uid: number; gid: number } | undefined;
  /** The Debian package and binaries; null from `available()` when missing (CI: thrown). */
  available(): boolean;
  start(dir: string): Promise<ServicePeer>;
}

const have = (tools: string[], pkg: string, name: string) =>
  requireTools(tools, pkg, `${name} deploy tests`) !== null;

export const nginx: ServiceDefinition = {
  name: 'nginx',
  files: {},
  available: () => have(['nginx'], 'nginx', 'nginx'),
  async start(dir) {
    const work = tempDir('nginx');
    const port = await freePort();
    const config = join(work, 'nginx.conf');
    writeFileSync(
      config,
      `daemon off;
worker_processes 1;
pid ${work}/nginx.pid;
error_log ${work}/error.log;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy; fastcgi_temp_path ${work}/fastcgi;
  uwsgi_temp_path ${work}/uwsgi; scgi_temp_path ${work}/scgi;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/fullchain.pem;
    ssl_certificate_key ${dir}/privkey.pem;
    location / { return 200 "ok\\n"; }
  }
}
`,
    );
    const binary = findTool('nginx')!;
    const args = ['-e', `${work}/error.log`, '-p', work, '-c', config];
    const peer = await startPeer({ name: 'nginx', argv: [binary, ...args], ready: () => listening(port) });
    return {
      name: 'nginx',
      peer,
      port,
      protocol: 'tls',
      ping: 'http',
      config,
      reload: [nginxReload({ binary, prefix: work, config })],
    };
  },
};

const APACHE_MODULES = '/usr/lib/apache2/modules';

export const apache: ServiceDefinition = {
  name: 'apache',
  files: {},
  available: () => have(['apache2'], 'apache2', 'Apache'),
  async start(dir) {
    const work = tempDir('apache');
    const port = await freePort();
    const config = join(work, 'httpd.conf');
    writeFileSync(
      config,
      `ServerRoot ${work}
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${work}/httpd.pid
DefaultRuntimeDir ${work}
ErrorLog ${work}/error.log
LogLevel warn
User nobody
Group nogroup
LoadModule mpm_event_module ${APACHE_MODULES}/mod_mpm_event.so
LoadModule authz_core_module ${APACHE_MODULES}/mod_authz_core.so
LoadModule socache_shmcb_module ${APACHE_MODULES}/mod_socache_shmcb.so
LoadModule ssl_module ${APACHE_MODULES}/mod_ssl.so
DocumentRoot ${work}
KeepAlive On
KeepAliveTimeout 60
SSLEngine on
SSLCertificateFile ${dir}/fullchain.pem
SSLCertificateKeyFile ${dir}/privkey.pem
`,
    );
    writeFileSync(join(work, 'index.html'), 'ok\n');
    const binary = findTool('apache2')!;
    // Ready once it completes a handshake: Apache reads its configuration a second time after
    // it opened its listener, and a configuration changed in between would be read half-started.
    const peer = await startPeer({
      name: 'apache',
      argv: [binary, '-f', config, '-DFOREGROUND'],
      ready: () =>
        probeOnce({ host: '127.0.0.1', port, servername: 'localhost', protocol: 'tls' }, 2_000).then(
          () => true,
        ),
    });
    return {
      name: 'apache',
      peer,
      port,
      protocol: 'tls',
      ping: 'http',
      config,
      reload: [apacheReload({ binary, config })],
    };
  },
};

export const haproxy: ServiceDefinition = {
  name: 'haproxy',
  files: { combined: true },
  available: () => have(['haproxy'], 'haproxy', 'HAProxy'),
  async start(dir) {
    const work = tempDir('haproxy');
    const port = await freePort();
    const socket = join(work, 'admin.sock');
    const config = join(work, 'haproxy.cfg');
    writeFileSync(
      config,
      `global
  stats socket ${socket} level admin
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend tls
  bind 127.0.0.1:${port} ssl crt ${dir}/combined.pem
  http-request return status 200 content-type text/plain string ok
`,
    );
    const peer = await startPeer({
      name: 'haproxy',
      argv: [findTool('haproxy')!, '-db', '-f', config],
      ready: () => listening(port),
    });
    return {
      name: 'haproxy',
      peer,
      port,
      protocol: 'tls',
      ping: 'http',
      reload: [haproxyRuntimeApi({ socket: { path: socket } })],
    };
  },
};
