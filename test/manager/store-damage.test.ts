// Damage in the store costs nothing that is still stored there (issue 13, items 6 and 11): a
// pointer damaged in itself (a directory planted where the file was, a Redis key of another type,
// garbage) is rebuilt from the newest valid generation, which is served; a damaged newest
// generation is fallen back from. Either way the damage is written over once, so the next start
// does not pay for it again, and nothing is ordered from the CA.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { readPointer } from '../../src/manager/records.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { redisPeer } from '../support/services.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function manager(store: Store, issuer: SwitchableIssuer) {
  const m = createCertificateManager({
    store,
    issuer,
    certificates: [{ id: 'web', names: ['localhost'] }],
    logger: quiet,
    reconcileIntervalMs: 0,
  });
  cleanup.push(() => m.stop());
  return m;
}

/** A store holding `generations` generations of "web"; returns their serials, oldest first. */
async function seed(store: Store, issuer: SwitchableIssuer, generations = 1) {
  const m = manager(store, issuer);
  await m.start();
  await m.ready();
  const serials = [m.status()[0]!.serial!];
  for (let i = 1; i < generations; i++) {
    await m.renewNow('web');
    serials.push(m.status()[0]!.serial!);
  }
  await m.stop();
  return serials;
}

/** Starts a manager with the CA down; what it loads, reports and serves. */
async function restart(store: Store, issuer: SwitchableIssuer) {
  issuer.fault = 'down';
  const calls = issuer.calls;
  const m = manager(store, issuer);
  const invalid: ManagerEvents['storedInvalid'][0][] = [];
  m.on('storedInvalid', (e) => invalid.push(e));
  const loaded: string[] = [];
  m.on('loaded', (e) => loaded.push(e.serial));
  await m.start();
  const server = tls.createServer({});
  m.attach(server);
  const port = await listen(server);
  cleanup.push(() => close(server));
  const served = (await handshake(port, { servername: 'localhost' })).serial;
  await m.stop();
  return { m, invalid, loaded, served, ordered: issuer.calls - calls };
}

function fileStore(): { store: FileStore; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ck-damage-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return { store: new FileStore({ directory: dir }), dir };
}

async function expectServedAndRepaired(store: Store, issuer: SwitchableIssuer, serial: string) {
  const first = await restart(store, issuer);
  expect(first.ordered).toBe(0);
  expect(first.loaded).toEqual([serial]);
  expect(first.served).toBe(serial);
  expect(first.invalid.map((e) => e.error.code)).toContain('STORE_CORRUPT');
  // Repaired once: the pointer names the served generation again...
  expect((await readPointer(store, issuer.id, 'web'))?.serial).toBe(serial);
  // ...so the next start finds nothing to report.
  const second = await restart(store, issuer);
  expect(second).toMatchObject({ ordered: 0, loaded: [serial], served: serial, invalid: [] });
}

describe('a pointer damaged in itself', () => {
  it.each([
    ['replaced by an empty directory', (path: string) => mkdirSync(path)],
    [
      'replaced by a directory holding a file',
      (path: string) => {
        mkdirSync(path);
        writeFileSync(join(path, 'junk'), 'x');
      },
    ],
    ['replaced by garbage', (path: string) => writeFileSync(path, '{"version":1,"ser')],
  ])('FileStore: current.json %s is rebuilt from the newest valid generation', async (_, plant) => {
    const { store, dir } = fileStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const [, newest] = await seed(store, issuer, 2);
    const path = join(dir, layout.certificate(issuer.id, 'web').current);
    rmSync(path);
    plant(path);
    await expectServedAndRepaired(store, issuer, newest!);
  });

  describe('RedisStore', () => {
    let url: string | null;
    let admin: Redis;
    beforeAll(async () => {
      url = await redisPeer();
      if (url) admin = new Redis(url);
    });
    afterAll(async () => {
      await admin?.quit();
    });

    it.each([
      ['a string', (r: Redis, k: string) => r.set(k, 'not a hash')],
      ['a list', (r: Redis, k: string) => r.rpush(k, 'a', 'b')],
    ])('the pointer key replaced by %s is rebuilt from the newest valid generation', async (_, plant) => {
      if (!url) return;
      const prefix = `certkeeper-test-${randomUUID()}`;
      const store = new RedisStore({ url, prefix, encryption: { keys: [randomBytes(32)] }, logger: quiet });
      cleanup.push(async () => {
        await store.close();
        const keys = await admin.keys(`${prefix}:*`);
        if (keys.length > 0) await admin.del(...keys);
      });
      const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
      const [, newest] = await seed(store, issuer, 2);
      const key = `${prefix}:v:${layout.certificate(issuer.id, 'web').current}`;
      await admin.del(key);
      await plant(admin, key);
      await expectServedAndRepaired(store, issuer, newest!);
    });
  });
});

describe('a damaged newest generation (issue 13 item 11)', () => {
  it('is fallen back from once, then repointed: the next start reports nothing', async () => {
    const { store } = fileStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const [older, newer] = await seed(store, issuer, 2);
    await store.put(layout.certificate(issuer.id, 'web').generation(newer!).cert, 'garbage');

    const first = await restart(store, issuer);
    expect(first).toMatchObject({ ordered: 0, loaded: [older], served: older });
    expect(first.invalid.map((e) => e.error.code)).toEqual(['STORE_CORRUPT']);
    const pointer = await readPointer(store, issuer.id, 'web');
    expect(pointer?.serial).toBe(older);
    // The damaged generation is gone, not kept as a fallback.
    expect(pointer?.previous).toBeNull();
    expect(await store.list(layout.certificate(issuer.id, 'web').generation(newer!).dir)).toEqual([]);

    const second = await restart(store, issuer);
    expect(second).toMatchObject({ ordered: 0, loaded: [older], served: older, invalid: [] });
  });
});

describe('what this replica cannot read but another may serve', () => {
  it('a newest generation sealed with a key this replica lacks is fallen back from, never written over', async () => {
    const shared = new MemoryStore();
    const [mine, theirs] = [randomBytes(32), randomBytes(32)];
    const here = new EncryptedStore(shared, { keys: [mine], logger: quiet });
    // The other replica writes with its own key (and can read this one's).
    const there = new EncryptedStore(shared, { keys: [theirs, mine], logger: quiet });
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const [older] = await seed(here, issuer);
    const [, newer] = await seed(there, issuer, 2);
    expect(newer).not.toBe(older);

    const started = await restart(here, issuer);
    expect(started).toMatchObject({ ordered: 0, served: older });
    // The other replica's certificate is still what the store points at, with its files.
    expect((await readPointer(shared, issuer.id, 'web'))?.serial).toBe(newer);
    expect(await shared.list(layout.certificate(issuer.id, 'web').generation(newer!).dir)).not.toEqual([]);
  });
});
