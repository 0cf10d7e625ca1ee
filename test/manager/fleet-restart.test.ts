// The README's fleet setup survives a restart (issue 13, "Done means"): a CachedStore over a
// RedisStore with encryption keys and a FileStore copy, a manager serving an https server. The
// process is killed (-9) once it serves, and started again: the restarted process serves the
// stored certificate as soon as start() resolves and orders nothing, with Redis reachable and with
// Redis unreachable (the primary pointed at a closed port). Runs the built package in child
// processes, as an application would.
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { redisPeer } from '../support/services.js';
import { handshake } from '../support/tls.js';

const redisUrl = await redisPeer();

const APP = `
import { FileStore, InternalCA, createCertificateManager, createHttpsServer, silentLogger } from 'certkeeper';
import { CachedStore, RedisStore } from 'certkeeper/stores';

const { FLEET_REDIS_URL, FLEET_PREFIX, FLEET_DIR, FLEET_KEY } = process.env;
// The README's example, with the keys given explicitly and quiet logs.
const store = new CachedStore({
  primary: new RedisStore({ url: FLEET_REDIS_URL, prefix: FLEET_PREFIX, encryption: { keys: [FLEET_KEY] }, logger: silentLogger }),
  cache: new FileStore({ directory: FLEET_DIR }),
  logger: silentLogger,
});
const manager = createCertificateManager({
  store,
  issuer: new InternalCA({ name: 'fleet' }),
  certificates: [{ id: 'api', names: ['api.fleet.test'] }],
  logger: silentLogger,
});
let orders = 0;
manager.on('obtaining', () => orders++);
const report = (phase) =>
  process.send({ phase, port, orders, serial: manager.certificate('api')?.serial ?? null });

let port = 0;
const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
await manager.start();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
port = server.address().port;
report('started');
await manager.ready();
report('ready');
process.on('message', (message) => {
  if (message === 'report') report('report');
});
`;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Report {
  phase: 'started' | 'ready' | 'report';
  port: number;
  orders: number;
  serial: string | null;
}

/** One run of the application, and the reports it sends. */
function run(file: string, env: Record<string, string>) {
  const child: ChildProcess = fork(file, [], { env: { ...process.env, ...env }, stdio: 'inherit' });
  const waiting = new Map<string, (report: Report) => void>();
  const seen = new Map<string, Report>();
  child.on('message', (report: Report) => {
    seen.set(report.phase, report);
    waiting.get(report.phase)?.(report);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const next = (phase: Report['phase']) =>
    new Promise<Report>((resolve, reject) => {
      const known = seen.get(phase);
      if (known && phase !== 'report') return resolve(known);
      seen.delete(phase);
      waiting.set(phase, resolve);
      child.once('exit', (code, signal) =>
        reject(new Error(`app exited (${code ?? signal}) before "${phase}"`)),
      );
    });
  return {
    next,
    async orders(): Promise<number> {
      const answer = next('report');
      child.send('report');
      return (await answer).orders;
    },
    async kill(): Promise<void> {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it.skipIf(!redisUrl)(
  "the README's fleet example serves its stored certificate at once after a restart, Redis up or down, and orders nothing",
  async () => {
    // Inside the package directory, so that 'certkeeper' resolves to this package (self-reference).
    const file = join(process.cwd(), `.fleet-${process.pid}.tmp.mjs`);
    writeFileSync(file, APP);
    cleanups.push(() => rmSync(file, { force: true }));
    const dir = mkdtempSync(join(tmpdir(), 'ck-fleet-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const prefix = `certkeeper-test-fleet-${randomUUID()}`;
    const admin = new Redis(redisUrl!, { lazyConnect: true });
    cleanups.push(async () => {
      const keys = await admin.keys(`${prefix}:*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    });
    const env = {
      FLEET_REDIS_URL: redisUrl!,
      FLEET_PREFIX: prefix,
      FLEET_DIR: dir,
      FLEET_KEY: randomBytes(32).toString('base64'),
    };
    const servedSerial = async (port: number) =>
      (await handshake(port, { servername: 'api.fleet.test' })).serial;

    // First start: nothing stored, one order.
    const first = run(file, env);
    const ready = await first.next('ready');
    expect(ready.orders).toBe(1);
    expect(await servedSerial(ready.port)).toBe(ready.serial);
    const serial = ready.serial!;
    // The key is sealed in Redis.
    const keys = (await admin.keys(`${prefix}:v:certificates/*`)).filter((k) => k.endsWith('/key.pem'));
    expect(keys).toHaveLength(1);
    expect((await admin.hgetBuffer(keys[0]!, 'd'))!.toString('latin1')).not.toContain('PRIVATE KEY');
    await first.kill();

    for (const redis of ['reachable', 'unreachable'] as const) {
      const url = redis === 'reachable' ? redisUrl! : `redis://127.0.0.1:${await closedPort()}`;
      const again = run(file, { ...env, FLEET_REDIS_URL: url });
      const started = await again.next('started');
      // Served from the moment start() resolved: the stored certificate, nothing ordered.
      expect(started.serial, redis).toBe(serial);
      expect(await servedSerial(started.port), redis).toBe(serial);
      expect((await again.next('ready')).serial, redis).toBe(serial);
      expect(await servedSerial(started.port), redis).toBe(serial);
      expect(await again.orders(), redis).toBe(0);
      await again.kill();
    }
  },
  60_000,
);
