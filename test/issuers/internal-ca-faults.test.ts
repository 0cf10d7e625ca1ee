// The embedded CA under faults: a partial CA, a store deleted under a running manager, a CA created
// while the clock was ahead, the CA lock's lease. What can be rebuilt is rebuilt, what cannot is a
// typed error, and key material is never overwritten.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { validateBundle } from '../../src/crypto/validate.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { FileStore } from '../../src/store/file-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import {
  caFile,
  cleanupAfterEach,
  clockAhead,
  context,
  HOUR,
  issue,
  ObservedStore,
  opensslVerify,
  plantLegacyCa,
  tempDir,
  text,
} from './internal-ca-support.js';

cleanupAfterEach();

const DAY = 24 * HOUR;

/** Whether `chainPem` verifies, now, up to exactly `root` (OpenSSL, independent of certkeeper). */
function verifiesTo(chainPem: string, root: string, purpose: 'sslserver' | 'sslclient' = 'sslserver') {
  const [leaf, intermediate] = parseCertificates(chainPem);
  return opensslVerify({ root, intermediate: intermediate!.pem, leaf: leaf!.pem }, purpose).ok;
}

async function files(store: Store, ca: InternalCA): Promise<Record<string, string | null>> {
  const keys = await store.list(`ca/${ca.name}`);
  const out: Record<string, string | null> = {};
  for (const key of keys.sort()) out[key.slice(key.lastIndexOf('/') + 1)] = text(await store.get(key));
  return out;
}

function manager(store: Store, ca: InternalCA, lockTtlMs?: number) {
  return createCertificateManager({
    store,
    issuer: ca,
    certificates: [{ id: 'web', names: ['localhost'] }],
    logger: silentLogger,
    clock: systemClock,
    ...(lockTtlMs ? { lockTtlMs } : {}),
  });
}

describe('a partial CA', () => {
  it('root.pem missing while root-key.pem exists (store of an older version): a typed error naming it; the key is never overwritten', async () => {
    const store = new FileStore({ directory: tempDir() });
    await plantLegacyCa(store);
    const ca = new InternalCA();
    await store.delete(caFile(ca, 'root.pem'));
    const before = await files(store, ca);
    const missing = { code: 'CA_ROOT_MISSING', details: { missing: ['root.pem'] } };
    await expect(issue(ca, store, ['x.test'])).rejects.toMatchObject(missing);
    await expect(ca.publishedRoots()).rejects.toMatchObject(missing);
    await expect(new InternalCA().rootCertificate(store)).rejects.toMatchObject(missing);
    expect(await files(store, ca)).toEqual(before);
  });

  it('root.pem missing in the current layout: it is only a copy; issuance goes on under the same root and the copy comes back', async () => {
    const store = new FileStore({ directory: tempDir() });
    const ca = new InternalCA();
    const first = await issue(ca, store, ['a.test']);
    const root = await ca.rootCertificate();
    await store.delete(caFile(ca, 'root.pem'));
    const again = new InternalCA(); // as after a restart
    const second = await issue(again, store, ['b.test']);
    expect(await again.publishedRoots()).toEqual([root]);
    for (const leaf of [first, second]) expect(verifiesTo(leaf.chainPem, root)).toBe(true);
    expect(text(await store.get(caFile(ca, 'root.pem')))).toBe(root);
  });

  it('an older store torn between the two writes of an intermediate rotation (new key, old certificate): the intermediate is rebuilt from the root', async () => {
    const store = new FileStore({ directory: tempDir() });
    const { root } = await plantLegacyCa(store);
    const torn = (await import('../../src/crypto/keys.js')).PrivateKey.generate();
    await store.put(caFile(new InternalCA(), 'intermediate-key.pem'), (await torn).toPem());
    const ca = new InternalCA();
    const leaf = await issue(ca, store, ['after.test']);
    expect(await ca.publishedRoots()).toEqual([root.certificate.pem]);
    expect(verifiesTo(leaf.chainPem, root.certificate.pem)).toBe(true);
  });

  it('an older store is taken over whole: same root and intermediate, revocations kept, one sealed record', async () => {
    const store = new MemoryStore();
    const { root, intermediate } = await plantLegacyCa(store);
    const revoked = [{ serial: '0badc0de', reason: 'keyCompromise', revokedAt: new Date().toISOString() }];
    await store.put(caFile(new InternalCA(), 'revoked.json'), JSON.stringify(revoked));
    const ca = new InternalCA();
    const leaf = await issue(ca, store, ['kept.test']);
    expect(leaf.chain[0]!.pem).toBe(intermediate.certificate.pem);
    expect(await ca.publishedRoots()).toEqual([root.certificate.pem]);
    expect(await ca.revokedSerials()).toEqual(['0badc0de']);
    // The keys now live only in the record (sealed where the store encrypts); copies of the
    // certificates stay for people and tools.
    expect(Object.keys(await files(store, ca)).sort()).toEqual(['intermediate.pem', 'root.pem', 'state.key']);
  });
});

describe('the store deleted under a running manager', () => {
  it('is an error until someone acts, never a new CA; restoring the backup resumes under the same root', async () => {
    const directory = join(tempDir(), 'store');
    const store = new FileStore({ directory });
    const ca = new InternalCA();
    const m = manager(store, ca);
    await m.start();
    await m.ready();
    const root = await ca.rootCertificate();
    const served = m.certificate('web')!;
    // The operator's backup of the CA: its directory in the store.
    const caDir = join(directory, 'ca', ca.name);
    const backup = join(tempDir(), 'backup');
    cpSync(caDir, backup, { recursive: true });

    rmSync(directory, { recursive: true, force: true });
    await expect(m.renewNow('web')).rejects.toMatchObject({ code: 'CA_ROOT_MISSING' });
    expect(m.certificate('web')!.serial).toBe(served.serial);
    expect(existsSync(join(directory, 'ca', ca.name, 'state.key'))).toBe(false);
    await expect(ca.publishedRoots()).rejects.toMatchObject({ code: 'CA_ROOT_MISSING' });

    // Recovery 1: the operator restores the CA's directory from the backup; no restart needed.
    cpSync(backup, caDir, { recursive: true });
    await m.renewNow('web');
    expect(m.certificate('web')!.serial).not.toBe(served.serial);
    expect(verifiesTo(m.certificate('web')!.chainPem, root)).toBe(true);
    await m.stop();
  });

  it('after a restart, certificates of a CA whose files are gone still say it existed; recreate() is the explicit way on', async () => {
    const directory = tempDir();
    const first = manager(new FileStore({ directory }), new InternalCA());
    await first.start();
    await first.ready();
    await first.stop();
    rmSync(join(directory, 'ca'), { recursive: true, force: true });

    const store = new FileStore({ directory });
    const ca = new InternalCA();
    const m = manager(store, ca);
    await m.start();
    const served = m.certificate('web')!;
    await expect(m.renewNow('web')).rejects.toMatchObject({ code: 'CA_ROOT_MISSING' });
    expect(await store.list(`ca/${ca.name}`)).toEqual([]);

    // Recovery 2 (no backup): a new CA, on purpose; then every certificate is re-issued from it.
    const root = await ca.recreate();
    await expect(ca.recreate()).rejects.toMatchObject({ code: 'CA_ROTATION_STATE' }); // it exists now
    await m.renewAll();
    expect(m.certificate('web')!.serial).not.toBe(served.serial);
    expect(verifiesTo(m.certificate('web')!.chainPem, root)).toBe(true);
    await m.stop();
  });
});

describe('clock skew', () => {
  it('a CA created while the clock was 2 days ahead issues valid chains once the clock is right', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const ahead = clockAhead(2 * DAY);
    const early = await issue(ca, store, ['early.test'], 'server', ahead);
    const earlyRoot = parseCertificates((await ca.publishedRoots())[0]!)[0]!;
    expect(early.chain[0]!.info.notBefore.getTime()).toBeGreaterThan(Date.now());

    const now = await issue(ca, store, ['now.test']);
    const roots = await ca.publishedRoots();
    expect(roots).toHaveLength(1);
    const root = parseCertificates(roots[0]!)[0]!;
    // Re-signed, not replaced: the same key, so what the old root signed still verifies under it.
    expect(root.info.subjectKeyId).toBe(earlyRoot.info.subjectKeyId);
    expect(root.node.publicKey.export({ format: 'der', type: 'spki' })).toEqual(
      earlyRoot.node.publicKey.export({ format: 'der', type: 'spki' }),
    );
    expect(
      validateBundle({
        key: now.key,
        chain: now.chainPem,
        trustAnchors: roots.join(''),
        names: ['now.test'],
      }),
    ).toMatchObject({ ok: true });
    expect(verifiesTo(now.chainPem, roots[0]!)).toBe(true);
    // CA certificates are backdated by an hour, leaves by a minute (at most a tenth of their life).
    for (const ca of [root, now.chain[0]!])
      expect(ca.info.notBefore.getTime()).toBeLessThanOrEqual(Date.now() - HOUR);
  });
});

describe('the CA lock', () => {
  it("is leased for the manager's lockTtlMs, not a fixed 60 s", async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const m = manager(store, ca, 4_000);
    await m.start();
    await m.ready();
    await ca.rotateIntermediate();
    const caLocks = store.locks.filter((l) => l.name === `ca/${ca.name}`);
    expect(caLocks.length).toBeGreaterThan(0);
    expect(caLocks.map((l) => l.ttlMs)).toEqual(caLocks.map(() => 4_000));
    // An option of its own wins over the manager's.
    const own = new InternalCA({ name: 'own', lockTtlMs: 7_000 });
    await own.rotateIntermediate(context(store).store);
    expect(store.locks.filter((l) => l.name === 'ca/own').every((l) => l.ttlMs === 7_000)).toBe(true);
    await m.stop();
  });
});
