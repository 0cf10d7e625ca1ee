// Real services for the deploy tests: each started as our own child process, with its own
// configuration in a temp dir and a free loopback port — never the system service. A missing
// binary skips loudly, except under CI=true (see test/support/system-tools.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort, sleep } from '../services.js';

export { closedPort as freePort };

export interface Peer {
  readonly child: ChildProcess;
  /** The tail of its stdout and stderr (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it exited. */
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Resolves true once the service answers. */
  ready: () => Promise<boolean>;
  readyMs?: number;
}

const started = new Set<Peer>();

/** Starts a service and waits until `ready`; throws with its output when it does not come up. */
export async function startPeer(options: StartOptions): Promise<Peer> {
  const child = spawn(options.argv[0]!, options.argv.slice(1), {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    uid: options.uid,
    gid: options.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.once('error', (error) => keep(Buffer.from(String(error))));
  const peer: Peer = {
    child,
    output: () => output,
    async stop() {
      started.delete(peer);
      if (!exited) child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    },
  };
  started.add(peer);
  const until = Date.now() + (options.readyMs ?? 20_000);
  while (Date.now() < until) {
    if (exited) break;
    if (await options.ready().catch(() => false)) return peer;
    await sleep(100);
  }
  await peer.stop();
  throw new Error(`${options.name} did not come up:\n${output}`);
}

/** Stops every peer still running (afterAll). */
export async function stopAllPeers(): Promise<void> {
  await Promise.all([...started].map((p) => p.stop()));
}

const temps: string[] = [];

/** A temp dir (removed by `removeTempDirs`); readable by `uid` when given (services that drop root). */
export function tempDir(prefix: string, owner?: { uid: number; gid: number }): string {
  const dir = mkdtempSync(join(tmpdir(), `certkeeper-${prefix}-`));
  temps.push(dir);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, 0o755);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export async function listening(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
