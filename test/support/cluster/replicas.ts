// Replica processes for the cluster tests: each one is test/support/cluster/replica.ts bundled
// with esbuild from the current src/ into one ESM file (dependencies stay external and resolve
// from node_modules). Not dist/: a child importing dist/ would test whatever was built last,
// not the source under test, and another process rebuilding dist/ (tsup empties it first) would
// pull it from under a running suite. esbuild is what tsup builds with, so it is always installed.
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { ReplicaConfig, ReplicaMessage } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../..');

let program: Promise<string> | undefined;
const outputs = new Set<string>();
const children = new Set<ChildProcess>();
let guarded = false;

function guardExit(): void {
  if (guarded) return;
  guarded = true;
  // A test process that dies mid-suite leaves no replica (they also exit when IPC closes) and
  // no bundle behind.
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
    for (const file of outputs) rmSync(file, { force: true });
  });
}

/** The bundled replica program (built once per test process). */
export function replicaProgram(): Promise<string> {
  program ??= (async () => {
    const { build } = await import('esbuild');
    const dir = join(root, 'node_modules/.cache/certkeeper-cluster');
    mkdirSync(dir, { recursive: true });
    // One file per test process: two suites bundling at once must not overwrite each other's.
    const outfile = join(dir, `replica-${process.pid}-${randomUUID().slice(0, 8)}.mjs`);
    outputs.add(outfile);
    guardExit();
    await build({
      entryPoints: [join(here, 'replica.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'inline',
      logLevel: 'silent',
    });
    return outfile;
  })();
  return program;
}

type Message<T extends ReplicaMessage['type']> = Extract<ReplicaMessage, { type: T }>;
export type EventMessage = Message<'event'>;

export class Replica {
  readonly id: string;
  readonly config: ReplicaConfig;
  readonly child: ChildProcess;
  readonly messages: ReplicaMessage[] = [];
  httpsPort = 0;
  httpPort = 0;
  #output = '';
  #waiters = new Set<() => void>();
  #replies = new Map<string, (m: Message<'reply'>) => void>();
  readonly #exited: Promise<void>;

  constructor(program: string, config: ReplicaConfig) {
    this.id = config.replicaId;
    this.config = config;
    this.child = fork(program, [], {
      env: { ...process.env, CERTKEEPER_REPLICA: JSON.stringify(config) },
      execArgv: ['--enable-source-maps'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(this.child);
    guardExit();
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        this.#output = (this.#output + chunk).slice(-20_000);
      });
    }
    this.child.on('message', (message: ReplicaMessage) => {
      this.messages.push(message);
      if (message.type === 'up') {
        this.httpsPort = message.httpsPort;
        this.httpPort = message.httpPort;
      }
      if (message.type === 'reply') this.#replies.get(message.id)?.(message);
      for (const wake of [...this.#waiters]) wake();
    });
    this.#exited = new Promise((resolve) =>
      this.child.once('exit', () => {
        children.delete(this.child);
        for (const wake of [...this.#waiters]) wake();
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** stdout/stderr and the last log lines, for failure messages. */
  output(): string {
    const logs = this.messages
      .filter((m) => m.type === 'log' || m.type === 'warning')
      .slice(-20)
      .map((m) => JSON.stringify(m));
    return `--- ${this.id} (pid ${this.child.pid}) ---\n${this.#output}\n${logs.join('\n')}`;
  }

  events(name?: string, id?: string): EventMessage[] {
    return this.messages.filter(
      (m): m is EventMessage =>
        m.type === 'event' &&
        (name === undefined || m.name === name) &&
        (id === undefined || (m.payload as { id?: string }).id === id),
    );
  }

  /** Resolves with the first message (already received or not) that matches; bounded. */
  waitFor<T extends ReplicaMessage>(
    match: (m: ReplicaMessage) => m is T,
    timeoutMs: number,
    what: string,
  ): Promise<T>;
  waitFor(match: (m: ReplicaMessage) => boolean, timeoutMs: number, what: string): Promise<ReplicaMessage>;
  waitFor(match: (m: ReplicaMessage) => boolean, timeoutMs: number, what: string): Promise<ReplicaMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(match);
        if (found) {
          done();
          resolve(found);
        } else if (!this.alive) {
          done();
          reject(new Error(`${this.id} exited while waiting for ${what}\n${this.output()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.id}: no ${what} within ${timeoutMs} ms\n${this.output()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  waitForEvent(name: string, id: string, timeoutMs: number, after = 0): Promise<EventMessage> {
    return this.waitFor(
      (m): m is EventMessage =>
        m.type === 'event' && m.name === name && (m.payload as { id?: string }).id === id && m.at >= after,
      timeoutMs,
      `"${name}" event for ${id}`,
    );
  }

  up(timeoutMs = 15_000): Promise<Message<'up'>> {
    return this.waitFor((m): m is Message<'up'> => m.type === 'up', timeoutMs, 'start-up');
  }

  /** Starts the manager. */
  go(): void {
    this.child.send({ type: 'go' });
  }

  call(method: string, ...args: unknown[]): Promise<unknown> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(id);
        reject(new Error(`${this.id}: ${method} did not answer within 30 s\n${this.output()}`));
      }, 30_000);
      this.#replies.set(id, (reply) => {
        clearTimeout(timer);
        this.#replies.delete(id);
        if (reply.ok) resolve(reply.value);
        else reject(new Error(`${this.id}: ${method} failed: ${reply.error}`));
      });
      this.child.send({ type: 'call', id, method, args });
    });
  }

  /** kill -9: no shutdown code runs, locks and heartbeats stay as they were. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.#exited;
  }

  /** A clean stop (releases what it holds), or SIGKILL when that takes too long. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    this.call('stop').catch(() => this.child.kill('SIGKILL'));
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Starts replicas and waits until each has its servers listening (managers not started yet). */
export async function startReplicas(
  count: number,
  config: (index: number) => ReplicaConfig,
): Promise<Replica[]> {
  const program = await replicaProgram();
  const replicas = Array.from({ length: count }, (_, i) => new Replica(program, config(i)));
  try {
    await Promise.all(replicas.map((r) => r.up()));
  } catch (error) {
    await Promise.all(replicas.map((r) => r.kill()));
    throw error;
  }
  return replicas;
}

/** The issue lock's current holder among `replicas`, as each one reported it. */
export function lockHolder(replicas: Replica[]): Replica | undefined {
  return replicas.find((r) => {
    if (!r.alive) return false;
    const last = r.messages.filter((m) => m.type === 'locked' || m.type === 'unlocked').at(-1);
    return last?.type === 'locked';
  });
}

/** A verifying TLS client: SHA-256 fingerprint of the leaf `port` serves for `servername`. */
export function servedFingerprint(port: number, servername: string, rootPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      ca: rootPem,
      ALPNProtocols: ['http/1.1'],
    });
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('handshake timed out')));
  });
}

/** What each replica serves for `servername` (null where the handshake failed). */
export function fingerprints(
  replicas: Replica[],
  servername: string,
  rootPem: string,
): Promise<(string | null)[]> {
  return Promise.all(
    replicas.map((r) => servedFingerprint(r.httpsPort, servername, rootPem).catch(() => null)),
  );
}

/** The one fingerprint every replica serves, or null while they differ or one fails. */
export async function commonFingerprint(
  replicas: Replica[],
  servername: string,
  rootPem: string,
): Promise<string | null> {
  const served = await fingerprints(replicas, servername, rootPem);
  const first = served[0];
  return first && served.every((f) => f === first) ? first : null;
}
