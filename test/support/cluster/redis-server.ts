// A private redis-server for tests that kill and restart Redis: the machine's shared Redis on
// 6379 is never touched. No persistence, so a restarted server is empty, as a Redis without AOF
// is after a crash. Missing redis-server skips loudly, except under CI=true, where it fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { closedPort, sleep } from '../services.js';

function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return null;
}

const REDIS_SERVER = which('redis-server');
const SETPRIV = which('setpriv');

/** Whether tests can run their own redis-server; warns (or throws under CI) when they cannot. */
export function redisServerAvailable(): boolean {
  if (REDIS_SERVER) return true;
  const message = 'redis-server not found on PATH: the Redis restart tests are NOT being run';
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n!!! ${message}\n`);
  return false;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

export interface RedisServer {
  port: number;
  url: string;
  /** Starts it (again) on the same port; resolves when it answers PING. */
  start(): Promise<void>;
  /** SIGKILL: no shutdown, connections simply drop. */
  kill(): Promise<void>;
  logs(): string;
}

export async function startRedisServer(): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error('redis-server not found on PATH');
  const port = await closedPort();
  let child: ChildProcess | undefined;
  let output = '';
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      await server.kill();
      // setpriv's parent-death signal: a test process killed with SIGKILL takes Redis with it.
      const [file, argv] = SETPRIV
        ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', REDIS_SERVER, ...args]]
        : [REDIS_SERVER, args];
      const started = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      for (const stream of [started.stdout!, started.stderr!]) {
        stream.setEncoding('utf8').on('data', (chunk: string) => {
          output = (output + chunk).slice(-10_000);
        });
      }
      process.once('exit', () => started.kill('SIGKILL'));
      for (let i = 0; i < 200; i++) {
        if (await ping(port)) return;
        if (started.exitCode !== null) break;
        await sleep(25);
      }
      throw new Error(`redis-server on port ${port} did not start:\n${output}`);
    },
    async kill() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((r) => running.once('exit', r));
      running.kill('SIGKILL');
      await exited;
    },
    logs: () => output,
  };
  await server.start();
  return server;
}
