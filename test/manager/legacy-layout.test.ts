// Stores written before the id became a certificate's identity in the store kept it under its
// first name: certificates/<issuer>/<first name, `*.` as `_wildcard_.`, `:` as `_`>/... After the
// upgrade such a store is still found and served without ordering anything, and is moved under
// the id once (issue 12 item 12, issue 13 item 12).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager, type ManagedCertificateOptions } from '../../src/index.js';
import { readPointer } from '../../src/manager/records.js';
import { FileStore } from '../../src/store/file-store.js';
import { certificateName, layout } from '../../src/store/layout.js';
import type { Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function app(
  store: Store,
  issuer: SwitchableIssuer,
  certificates: ManagedCertificateOptions[],
  eager = true,
) {
  // Repairs run in the background of a lazy load; the log line is when one is done.
  const repaired = new Map<string, () => void>();
  const m = createCertificateManager({
    store,
    issuer,
    certificates,
    logger: {
      ...quiet,
      info(message: string, fields?: Record<string, unknown>) {
        if (message === 'stored certificate repaired') repaired.get(String(fields?.id))?.();
      },
    },
    reconcileIntervalMs: 0,
    ...(eager ? {} : { eagerLoadLimit: 0 }),
  });
  const invalid: string[] = [];
  m.on('storedInvalid', (e) => invalid.push(`${e.id}:${e.error.code}`));
  cleanup.push(() => m.stop());
  const repairOf = (id: string) => new Promise<void>((resolve) => repaired.set(id, resolve));
  return { m, invalid, repairOf };
}

/**
 * Obtains `certificates` and rewrites the store the way the previous version laid it out: the
 * same files (the pointer format did not change), under the first-name directory.
 */
async function legacyStore(certificates: ManagedCertificateOptions[], issuer: SwitchableIssuer) {
  const dir = mkdtempSync(join(tmpdir(), 'ck-legacy-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileStore({ directory: dir });
  const { m } = app(store, issuer, certificates);
  await m.start();
  await m.ready();
  const serials = new Map(
    certificates.map((c) => [c.id ?? c.names[0]!, m.certificate(c.id ?? c.names[0]!)!.serial]),
  );
  await m.stop();
  for (const c of certificates) await toLegacy(store, issuer.id, c.id ?? c.names[0]!, c.names[0]!);
  return { store, serials };
}

async function toLegacy(store: Store, issuer: string, id: string, primary: string) {
  const from = layout.certificate(issuer, id).dir;
  const to = layout.legacyCertificate(issuer, primary).dir;
  for (const key of await store.list(from)) {
    await store.put(`${to}${key.slice(from.length)}`, (await store.get(key))!);
    await store.delete(key);
  }
}

async function served(m: ReturnType<typeof app>['m'], servername: string) {
  const server = tls.createServer({});
  m.attach(server);
  const port = await listen(server);
  cleanup.push(() => close(server));
  return (await handshake(port, { servername })).serial;
}

describe('a store laid out by the previous version (first-name directories)', () => {
  const certificates = [
    { id: 'web', names: ['localhost'] },
    { names: ['*.example.com'] },
    { names: ['::1', 'ipv6.test'] },
  ];

  it('is served after the upgrade with the CA down, and moved under the ids once', async () => {
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const { store, serials } = await legacyStore(certificates, issuer);
    // The layout the previous version wrote, literally.
    const root = `certificates/${issuer.id}`;
    for (const name of ['localhost', '_wildcard_.example.com', '__1'])
      expect(await store.get(`${root}/${name}/current.json`), name).not.toBeNull();
    expect(await store.list(`${root}/@web`)).toEqual([]);

    issuer.fault = 'down';
    const calls = issuer.calls;
    const upgraded = app(store, issuer, certificates);
    await upgraded.m.start();
    expect(upgraded.invalid).toEqual([]);
    expect(issuer.calls).toBe(calls);
    for (const [id, serial] of serials) expect(upgraded.m.certificate(id)?.serial, id).toBe(serial);
    expect(await served(upgraded.m, 'localhost')).toBe(serials.get('web'));
    expect(await served(upgraded.m, 'a.example.com')).toBe(serials.get('*.example.com'));

    // Moved: under the id now, and the first-name directory is gone.
    for (const [id, serial] of serials) {
      expect((await readPointer(store, issuer.id, id))?.serial, id).toBe(serial);
      const primary = certificates.find((c) => (c.id ?? c.names[0]) === id)!.names[0]!;
      expect(await store.list(layout.legacyCertificate(issuer.id, primary).dir), id).toEqual([]);
    }
    await upgraded.m.stop();
    const again = app(store, issuer, certificates);
    await again.m.start();
    expect(again.invalid).toEqual([]);
    for (const [id, serial] of serials) expect(again.m.certificate(id)?.serial, id).toBe(serial);
    expect(issuer.calls).toBe(calls);
  });

  it('is moved on first use when certificates load lazily', async () => {
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    const { store, serials } = await legacyStore(certificates, issuer);
    issuer.fault = 'down';
    const lazy = app(store, issuer, certificates, false);
    const loaded = new Map<string, string>();
    lazy.m.on('loaded', (e) => loaded.set(e.id, e.serial));
    await lazy.m.start();
    expect(Object.fromEntries(loaded)).toEqual(Object.fromEntries(serials));
    // The move runs after the first handshake, in the background (a handshake never waits for
    // store writes): held here until the handshake is done, as a loaded CPU may delay it.
    let handshakeDone!: () => void;
    const held = new Promise<void>((resolve) => {
      handshakeDone = resolve;
    });
    const tryLock = store.tryLock.bind(store);
    store.tryLock = async (name, options) => {
      if (name === layout.issueLock('*.example.com')) await held;
      return tryLock(name, options);
    };
    const moved = lazy.repairOf('*.example.com');
    // A certificate other than the server's default, loaded by its first handshake.
    expect(await served(lazy.m, 'a.example.com')).toBe(serials.get('*.example.com'));
    handshakeDone();
    await moved;
    expect((await readPointer(store, issuer.id, '*.example.com'))?.serial).toBe(serials.get('*.example.com'));
    expect(await store.list(layout.legacyCertificate(issuer.id, '*.example.com').dir)).toEqual([]);
  });

  it('a first-name directory two ids shared is used only by the id its pointer names', async () => {
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    // Under the previous version ids "a" and "b" (first name "localhost") took turns in one
    // directory; the last to commit ("b") is the one it holds.
    const { store, serials } = await legacyStore([{ id: 'b', names: ['localhost', 'b.test'] }], issuer);
    expect(certificateName('localhost')).toBe('localhost');
    const both = [
      { id: 'a', names: ['localhost'] },
      { id: 'b', names: ['localhost', 'b.test'] },
    ];
    const upgraded = app(store, issuer, both);
    await upgraded.m.start();
    await upgraded.m.ready();
    expect(upgraded.m.certificate('b')?.serial).toBe(serials.get('b'));
    const a = upgraded.m.credentials('a')!;
    expect(a.serial).not.toBe(serials.get('b'));
    expect(a.key.publicKeyFingerprint()).not.toBe(upgraded.m.credentials('b')!.key.publicKeyFingerprint());
    expect(upgraded.invalid).toEqual([]);
  });
});
