// A revoked certificate is never a fallback (issue 12 item 7): once `revoke()` has revoked it,
// its generation is deleted from the store, is not kept as `previous`, is not restored by a failed
// live check, and is not served after a restart, whether the replacement was obtained (and is now
// unreadable) or not yet.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { readPointer } from '../../src/manager/records.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import type { Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ck-revoked-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileStore({ directory: dir });
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const make = () => {
    const m = createCertificateManager({
      store,
      issuer,
      certificates: [{ id: 'web', names: ['localhost'] }],
      logger: quiet,
      reconcileIntervalMs: 0,
    });
    cleanup.push(() => m.stop());
    return m;
  };
  const keys = layout.certificate(issuer.id, 'web');
  return { store, issuer, make, keys };
}

async function attached(m: ReturnType<ReturnType<typeof setup>['make']>) {
  const server = tls.createServer({});
  m.attach(server);
  const port = await listen(server);
  cleanup.push(() => close(server));
  return { server, port };
}

async function deleted(store: Store, dir: string): Promise<boolean> {
  return (await store.list(dir)).length === 0;
}

describe('a revoked certificate', () => {
  it('is deleted from the store and not kept as the previous generation', async () => {
    const { store, issuer, make, keys } = setup();
    const m = make();
    await m.start();
    await m.ready();
    const revoked = m.certificate('web')!.serial;
    await m.revoke('web', 'keyCompromise');
    const replacement = m.certificate('web')!.serial;
    expect(replacement).not.toBe(revoked);
    const pointer = (await readPointer(store, issuer.id, 'web'))!;
    expect(pointer.serial).toBe(replacement);
    expect(pointer.previous?.serial).not.toBe(revoked);
    expect(pointer.revoked).toContain(revoked);
    expect(await deleted(store, keys.generation(revoked).dir)).toBe(true);
  });

  it('is not restored when the live check of its replacement fails', async () => {
    const { store, issuer, make, keys } = setup();
    const m = make();
    const { server, port } = await attached(m);
    await m.start();
    await m.ready();
    const revoked = m.certificate('web')!.serial;
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(revoked);
    const rolledBack: ManagerEvents['rolledBack'][0][] = [];
    m.on('rolledBack', (e) => rolledBack.push(e));
    // The server ignores new contexts: the replacement's live check fails.
    server.setSecureContext = () => {};
    await expect(m.revoke('web', 'keyCompromise')).rejects.toMatchObject({ code: 'LIVE_VERIFY_FAILED' });

    expect(m.certificate('web')?.serial).not.toBe(revoked);
    expect(rolledBack.map((e) => e.servingSerial)).not.toContain(revoked);
    const pointer = (await readPointer(store, issuer.id, 'web'))!;
    expect(pointer.serial).not.toBe(revoked);
    expect(pointer.previous?.serial).not.toBe(revoked);
    expect(await deleted(store, keys.generation(revoked).dir)).toBe(true);

    // Once the server takes contexts again, the next certificate is served.
    Reflect.deleteProperty(server, 'setSecureContext');
    await m.renewNow('web');
    const served = (await handshake(port, { servername: 'localhost' })).serial;
    expect(served).toBe(m.certificate('web')!.serial);
    expect(served).not.toBe(revoked);
  });

  it('is not served after a restart when its replacement is unreadable', async () => {
    const { store, issuer, make, keys } = setup();
    const m = make();
    await m.start();
    await m.ready();
    const revoked = m.certificate('web')!.serial;
    await m.revoke('web', 'keyCompromise');
    const replacement = m.certificate('web')!.serial;
    await m.stop();
    await store.put(keys.generation(replacement).cert, 'garbage');

    issuer.fault = 'down';
    const again = make();
    const loaded: string[] = [];
    again.on('loaded', (e) => loaded.push(e.serial));
    await again.start();
    expect(loaded).not.toContain(revoked);
    expect(again.certificate('web')?.serial).not.toBe(revoked);
    const { port } = await attached(again);
    await expect(handshake(port, { servername: 'localhost' })).rejects.toThrow();
  });

  it('is not served after a restart that came before its replacement was obtained', async () => {
    const { store, issuer, make, keys } = setup();
    const m = make();
    await m.start();
    await m.ready();
    const revoked = m.certificate('web')!.serial;
    issuer.fault = 'down'; // revocation goes through, the replacement does not
    await expect(m.revoke('web', 'keyCompromise')).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    await m.stop();
    expect(await deleted(store, keys.generation(revoked).dir)).toBe(true);

    const again = make();
    const loaded: string[] = [];
    again.on('loaded', (e) => loaded.push(e.serial));
    const invalid: string[] = [];
    again.on('storedInvalid', (e) => invalid.push(e.error.code));
    await again.start();
    expect(loaded).not.toContain(revoked);
    expect(again.certificate('web')).toBeNull();
    // Revoked is not damaged: nothing is reported as such.
    expect(invalid).toEqual([]);
    issuer.fault = null;
    await again.ready();
    expect(again.certificate('web')!.serial).not.toBe(revoked);
  });
});
