// BIND 9 from Debian (`named`) as the real DNS server of the DNS-01 tests: a zone of its own with
// a TSIG key allowed to change TXT records, served by a primary on 127.0.0.1 and (by default) a
// secondary on ::1 that follows it by NOTIFY and zone transfer, both on one free port, each
// with a throwaway named.conf in a temp dir, run in the foreground as the current user and killed
// afterwards. The zone's NS records name both, so "the authoritative servers" of the zone are
// these two processes. (named listens only on addresses of the host's interfaces, so not on
// 127.0.0.2: the two servers are told apart by address family, one port for both as NS needs.)
//
// When `named` is not installed, suites wrapped in describeBind skip loudly, except under
// CI=true, where startBindZone throws (.ci/run installs bind9).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';
import { exchange, formatServer, parseServer } from '../../src/challenges/providers/dns-client.js';
import {
  CLASS,
  decodeMessage,
  encodeMessage,
  readTxt,
  TYPE,
} from '../../src/challenges/providers/dns-wire.js';

const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];

function find(command: string): string | undefined {
  for (const dir of SEARCH) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {}
  }
  return undefined;
}

const NAMED = find('named');
const SETPRIV = find('setpriv');
const MISSING =
  'named (BIND 9) not found (install with apt-get install -y bind9): RFC 2136 / DNS-01 tests against a real DNS server are NOT being run';

export function bindAvailable(): boolean {
  return NAMED !== undefined;
}

/** `describe` for suites that need BIND: skips loudly without it, except under CI=true. */
export function describeBind(name: string, fn: () => void): void {
  if (bindAvailable() || process.env.CI === 'true') {
    describe(name, fn);
    return;
  }
  console.warn(`\n!!! SKIPPING "${name}": ${MISSING}\n`);
  describe.skip(name, fn);
}

export interface NamedServer {
  address: string;
  /** `address:port`, as DNS-01 options and Pebble's -dnsserver take it. */
  server: string;
  /** Freezes the process (SIGSTOP): it answers nothing, and catches up after resume(). */
  pause(): void;
  resume(): void;
  logs(): string;
}

export interface BindZone {
  zone: string;
  port: number;
  tsig: { name: string; secret: string; algorithm: 'hmac-sha256' };
  primary: NamedServer;
  secondary?: NamedServer;
  /** TXT values at `name` as `server` answers them (authoritatively, no recursion). */
  txt(server: NamedServer, name: string): Promise<string[]>;
  stop(): Promise<void>;
}

export interface BindZoneOptions {
  /** Default `certkeeper.test`. */
  zone?: string;
  /** Start a secondary on ::1 (default true). */
  secondary?: boolean;
  /** Extra zone file lines (`www IN A 127.0.0.1`). */
  records?: string[];
}

const PRIMARY = '127.0.0.1';
const SECONDARY = '::1';

function tcpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, address, () => server.close(() => resolve(true)));
  });
}

function udpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, address, () => socket.close(() => resolve(true)));
  });
}

/** A port free for TCP and UDP on both addresses (named binds it a moment later; a lost race is retried). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all([PRIMARY, SECONDARY].flatMap((a) => [tcpFree(a, port), udpFree(a, port)]));
    if (free.every(Boolean)) return port;
  }
}

const live = new Set<ChildProcess>();

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGCONT'); // a paused named must run to die
    child.kill('SIGKILL');
  });
}
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function options(dir: string, address: string, port: number, extra: string): string {
  const v6 = address.includes(':');
  return `options {
  directory "${dir}";
  pid-file none;
  session-keyfile "${dir}/session.key";
  managed-keys-directory "${dir}";
  listen-on port ${port} { ${v6 ? 'none' : address}; };
  listen-on-v6 port ${port} { ${v6 ? address : 'none'}; };
  query-source address ${PRIMARY};
  query-source-v6 address ${SECONDARY};
  transfer-source ${PRIMARY};
  notify-source-v6 ${SECONDARY};
  recursion no;
  dnssec-validation no;
  allow-query { any; };
${extra}
};
controls { };
`;
}

async function query(server: string, name: string, type: number) {
  const wire = encodeMessage({
    id: 1,
    flags: 0,
    questions: [{ name, type, class: CLASS.IN }],
    answers: [],
    authority: [],
    additional: [],
  });
  const answer = await exchange(parseServer(server), wire, { transport: 'udp', timeoutMs: 300, tries: 1 });
  return decodeMessage(answer);
}

export async function startBindZone(opts: BindZoneOptions = {}): Promise<BindZone> {
  if (!NAMED) throw new Error(`startBindZone: ${MISSING}`);
  const zone = opts.zone ?? 'certkeeper.test';
  const withSecondary = opts.secondary ?? true;
  const tsig = {
    name: 'certkeeper-test.',
    secret: randomBytes(32).toString('base64'),
    algorithm: 'hmac-sha256' as const,
  };
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bind-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(kill));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        return await launch(port);
      } catch (error) {
        await Promise.all(children.splice(0).map(kill));
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }

  async function launch(port: number): Promise<BindZone> {
    const key = `key "${tsig.name}" { algorithm ${tsig.algorithm}; secret "${tsig.secret}"; };\n`;
    const primaryDir = mkdtempSync(join(dir, 'primary-'));
    writeFileSync(
      join(primaryDir, 'zone.db'),
      [
        '$TTL 60',
        `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 3600 600 86400 60`,
        `@ IN NS ns1.${zone}.`,
        ...(withSecondary ? [`@ IN NS ns2.${zone}.`] : []),
        `ns1 IN A ${PRIMARY}`,
        ...(withSecondary ? [`ns2 IN AAAA ${SECONDARY}`] : []),
        ...(opts.records ?? []),
        '',
      ].join('\n'),
    );
    const notify = withSecondary
      ? `  notify explicit;\n  also-notify { ${SECONDARY} port ${port}; };\n  allow-transfer { ${PRIMARY}; ${SECONDARY}; };`
      : '  notify no;';
    writeFileSync(
      join(primaryDir, 'named.conf'),
      `${options(primaryDir, PRIMARY, port, notify)}${key}zone "${zone}" {\n  type primary;\n  file "${primaryDir}/zone.db";\n  update-policy { grant ${tsig.name} zonesub TXT; };\n};\n`,
    );
    const primary = start(primaryDir, PRIMARY, port);
    await ready(primary, () => query(primary.server, zone, TYPE.SOA), 'primary');
    let secondary: ReturnType<typeof start> | undefined;
    if (withSecondary) {
      const secondaryDir = mkdtempSync(join(dir, 'secondary-'));
      writeFileSync(
        join(secondaryDir, 'named.conf'),
        `${options(secondaryDir, SECONDARY, port, '  notify no;\n  allow-notify { any; };')}zone "${zone}" {\n  type secondary;\n  primaries { ${PRIMARY} port ${port}; };\n  file "${secondaryDir}/zone.db";\n};\n`,
      );
      secondary = start(secondaryDir, SECONDARY, port);
      // Ready once it has transferred the zone and answers for it with authority.
      await ready(
        secondary,
        async () => {
          const answer = await query(secondary!.server, zone, TYPE.SOA);
          if (answer.rcode !== 0 || !answer.authoritative) throw new Error(`rcode ${answer.rcode}`);
        },
        'secondary',
      );
    }
    return {
      zone,
      port,
      tsig,
      primary,
      secondary,
      async txt(server, name) {
        const answer = await query(server.server, name, TYPE.TXT);
        return answer.answers.filter((r) => r.type === TYPE.TXT).map(readTxt);
      },
      stop,
    };
  }

  function start(home: string, address: string, port: number): NamedServer & { child: ChildProcess } {
    let output = '';
    const args = ['-g', '-n', '1', '-c', join(home, 'named.conf')];
    const [file, argv] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', NAMED!, ...args]]
      : [NAMED!, args];
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-200_000);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    children.push(child);
    live.add(child);
    child.once('exit', () => live.delete(child));
    return {
      child,
      address,
      server: formatServer({ host: address, port }),
      pause: () => child.kill('SIGSTOP'),
      resume: () => child.kill('SIGCONT'),
      logs: () => output,
    };
  }

  async function ready(server: ReturnType<typeof start>, probe: () => Promise<unknown>, what: string) {
    const deadline = Date.now() + 15_000;
    let last: unknown;
    for (;;) {
      if (server.child.exitCode !== null)
        throw new Error(`named (${what}) exited: ${server.logs().slice(-2000)}`);
      try {
        await probe();
        return;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline)
        throw new Error(
          `named (${what}) not answering: ${(last as Error)?.message}\n${server.logs().slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
