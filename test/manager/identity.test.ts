// A certificate's identity in the store is its id, never one of its names (issue 12 item 12,
// issue 13 item 12): names that mapped to one directory, and ids that share a first name, keep
// their own pointer, key and lock; two configurations claiming one id in a shared store are
// refused (CERTIFICATE_CONFLICT) instead of replacing each other's certificate by turns.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager, type ManagedCertificateOptions } from '../../src/index.js';
import { readPointer } from '../../src/manager/records.js';
import { FileStore } from '../../src/store/file-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function fileStore(): FileStore {
  const dir = mkdtempSync(join(tmpdir(), 'ck-identity-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return new FileStore({ directory: dir });
}

function app(store: Store, issuer: SwitchableIssuer, certificates: ManagedCertificateOptions[]) {
  const m = createCertificateManager({ store, issuer, certificates, logger: quiet, reconcileIntervalMs: 0 });
  const invalid: string[] = [];
  m.on('storedInvalid', (e) => invalid.push(`${e.id}:${e.error.code}`));
  cleanup.push(() => m.stop());
  return { m, invalid };
}

/** Starts `certificates`, then restarts them with the CA down: each must load what it stored. */
async function storedAndReloaded(store: Store, groups: ManagedCertificateOptions[][]) {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const first = new Map<string, { serial: string; fingerprint: string }>();
  for (const certificates of groups) {
    const { m } = app(store, issuer, certificates);
    await m.start();
    await m.ready();
    for (const c of certificates) {
      const served = m.certificate(c.id ?? c.names[0]!)!;
      first.set(c.id ?? c.names[0]!, { serial: served.serial, fingerprint: served.fingerprint256 });
    }
    await m.stop();
  }
  issuer.fault = 'down';
  const calls = issuer.calls;
  const again = new Map<string, { serial?: string; keyType?: string }>();
  const invalid: string[] = [];
  for (const certificates of groups) {
    const started = app(store, issuer, certificates);
    await started.m.start();
    invalid.push(...started.invalid);
    for (const c of certificates) {
      const id = c.id ?? c.names[0]!;
      again.set(id, {
        serial: started.m.certificate(id)?.serial,
        keyType: started.m.credentials(id)?.key.type,
      });
    }
  }
  return { first, again, invalid, ordered: issuer.calls - calls };
}

describe('certificates whose first names shared a directory (issue 12 item 12)', () => {
  it('`*.example.com` and `_wildcard_.example.com`, `::1` and `__1` keep their own certificates', async () => {
    const certificates = [
      { names: ['*.example.com'] },
      { names: ['_wildcard_.example.com'] },
      { names: ['::1'] },
      { names: ['__1'] },
    ];
    const { first, again, invalid, ordered } = await storedAndReloaded(fileStore(), [certificates]);
    expect(invalid).toEqual([]);
    expect(ordered).toBe(0);
    for (const [id, stored] of first) expect(again.get(id)?.serial, id).toBe(stored.serial);
    expect(new Set([...first.values()].map((s) => s.fingerprint)).size).toBe(4);
  });
});

describe('an id that cannot be mapped to one store key', () => {
  it.each([
    ['not valid Unicode', { id: 'web\uD800', names: ['a.test'] }],
    ['too long once encoded', { id: 'É'.repeat(100), names: ['a.test'] }],
  ])('is refused when configured (%s), naming the option', (_, certificate) => {
    expect(() =>
      createCertificateManager({ store: new MemoryStore(), certificates: [certificate], logger: quiet }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'certificates[0].id' } }));
  });
});

describe('ids that share a first name in one store (issue 13 item 12)', () => {
  it('keep their own key and certificate across restarts, whatever their names, purpose or key type', async () => {
    const groups: ManagedCertificateOptions[][] = [
      [{ id: 'api', names: ['localhost'] }],
      [{ id: 'admin', names: ['localhost', 'admin.test'], keyType: 'rsa-2048' }],
      [{ id: 'outbound', names: ['localhost'], purpose: 'client' }],
    ];
    const { first, again, invalid, ordered } = await storedAndReloaded(fileStore(), groups);
    expect(invalid).toEqual([]);
    expect(ordered).toBe(0);
    for (const [id, stored] of first) expect(again.get(id)?.serial, id).toBe(stored.serial);
    expect(new Set([...first.values()].map((s) => s.fingerprint)).size).toBe(3);
    expect(again.get('admin')?.keyType).toBe('rsa-2048');
    expect(again.get('api')?.keyType).toBe('ec-p256');
  });
});

describe('two configurations claiming one id in a shared store', () => {
  function shared() {
    const store = new MemoryStore();
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    return { store, issuer };
  }

  it('a running replica refuses to replace what another configuration committed, and keeps serving', async () => {
    const { store, issuer } = shared();
    const a = app(store, issuer, [{ id: 'web', names: ['localhost'] }]);
    await a.m.start();
    await a.m.ready();
    const mine = a.m.certificate('web')!.serial;

    // Another application (or a new configuration) starts with the same id and names the first
    // one's certificate does not cover: at start-up that is a configuration change, so it
    // replaces the stored certificate.
    const b = app(store, issuer, [{ id: 'web', names: ['other.test'] }]);
    await b.m.start();
    await b.m.ready();
    const theirs = b.m.certificate('web')!.serial;
    expect(theirs).not.toBe(mine);

    // The first one, still running, cannot use it and does not take the id back.
    const calls = issuer.calls;
    await expect(a.m.renewNow('web')).rejects.toMatchObject({
      code: 'CERTIFICATE_CONFLICT',
      details: { id: 'web', retryable: false, stored: { names: ['other.test'] } },
      message: expect.stringMatching(/different ids/),
    });
    expect(issuer.calls).toBe(calls);
    expect((await readPointer(store, issuer.id, 'web'))?.serial).toBe(theirs);
    expect(a.m.certificate('web')?.serial).toBe(mine);
    expect(a.m.status()[0]!.lastError?.code).toBe('CERTIFICATE_CONFLICT');
    await b.m.reconcile();
    expect(b.m.certificate('web')?.serial).toBe(theirs);
  });

  it('a running replica of the old configuration adopts a certificate of the new one that fits it', async () => {
    const { store, issuer } = shared();
    const old = app(store, issuer, [{ id: 'web', names: ['localhost'] }]);
    await old.m.start();
    await old.m.ready();
    // Rolling out a configuration that adds a name: the new certificate covers the old names.
    const next = app(store, issuer, [{ id: 'web', names: ['localhost', 'new.test'] }]);
    await next.m.start();
    await next.m.ready();
    await old.m.reconcile();
    expect(old.m.certificate('web')?.serial).toBe(next.m.certificate('web')!.serial);
    // A restart with the new configuration loads it without ordering.
    await next.m.stop();
    const calls = issuer.calls;
    const restarted = app(store, issuer, [{ id: 'web', names: ['new.test', 'localhost'] }]);
    await restarted.m.start();
    expect(restarted.m.certificate('web')?.serial).toBe(next.m.certificate('web')!.serial);
    expect(issuer.calls).toBe(calls);
    expect(restarted.invalid).toEqual([]);
  });

  it('a restart with a new key type is a deliberate change: the certificate is replaced at once', async () => {
    const { store, issuer } = shared();
    const before = app(store, issuer, [{ id: 'web', names: ['localhost'] }]);
    await before.m.start();
    await before.m.ready();
    await before.m.stop();
    const after = app(store, issuer, [{ id: 'web', names: ['localhost'], keyType: 'rsa-2048' }]);
    const renewed = new Promise((resolve) => after.m.once('renewed', resolve));
    await after.m.start();
    await renewed;
    expect(after.m.credentials('web')?.key.type).toBe('rsa-2048');
  });
});
