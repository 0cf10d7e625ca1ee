// The pointer commit is a fenced write: a replica whose issuance lease lapsed (a long pause, the
// store expiring it) while its issuer was still answering can neither overwrite the commit of the
// replica that took the lock next nor install its own certificate. Real stores: File, Redis,
// PostgreSQL. The lapse is made deterministic by releasing the first holder's lease in the store
// behind its back, which is what expiry does, before its local lapse timer could notice.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateRequest, IssuedCertificate, IssuerContext } from '../../src/issuers/issuer.js';
import { silentLogger } from '../../src/logger.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { commitGeneration, readPointer, revertPointer } from '../../src/manager/records.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { LockLease, Store } from '../../src/store/store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { postgresPeer, redisPeer } from '../support/services.js';

const redisUrl = await redisPeer();
const postgresUrl = await postgresPeer();
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Opened {
  store: Store;
  drop(): Promise<void>;
}

const stores: [string, (() => Promise<Opened>) | null][] = [
  [
    'FileStore',
    async () => {
      const directory = mkdtempSync(join(tmpdir(), 'certkeeper-fence-'));
      return {
        store: new FileStore({ directory }),
        drop: async () => rmSync(directory, { recursive: true, force: true }),
      };
    },
  ],
  [
    'RedisStore',
    redisUrl
      ? async () => {
          const prefix = `certkeeper-fence-${randomUUID()}`;
          return {
            store: new RedisStore({ url: redisUrl, prefix, encryption: 'none', logger: silentLogger }),
            drop: async () => {
              const admin = new Redis(redisUrl);
              const keys = await admin.keys(`${prefix}:*`);
              if (keys.length > 0) await admin.del(...keys);
              await admin.quit();
            },
          };
        }
      : null,
  ],
  [
    'PostgresStore',
    postgresUrl
      ? async () => {
          const table = `ck_fence_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
          return {
            store: new PostgresStore({
              connectionString: postgresUrl,
              table,
              encryption: false,
              logger: silentLogger,
            }),
            drop: async () => {
              const admin = new pg.Client({ connectionString: postgresUrl });
              await admin.connect();
              await admin.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`);
              await admin.end();
            },
          };
        }
      : null,
  ],
];

/** The store as the first replica sees it, remembering the leases it was given. */
function spied(store: Store): { store: Store; leases: LockLease[] } {
  const leases: LockLease[] = [];
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'lock' || prop === 'tryLock') {
        return async (...args: unknown[]) => {
          const lease = await (value as (...a: unknown[]) => Promise<LockLease | null>).apply(target, args);
          if (lease) leases.push(lease);
          return lease;
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, leases };
}

/** An issuer whose answers wait at a gate the test opens. */
class GatedIssuer extends SwitchableIssuer {
  gate: Promise<void> | undefined;
  entered: (() => void) | undefined;
  override async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    this.entered?.();
    await this.gate;
    return super.issue(request, context);
  }
}

for (const [name, open] of stores) {
  describe.skipIf(!open)(`fenced pointer commit, ${name}`, () => {
    it('a lapsed holder does not overwrite the next holder’s commit, nor install its certificate', async () => {
      const { store: shared, drop } = await open!();
      cleanup.push(drop, () => shared.close());
      const spy = spied(shared);
      const certificates = [{ id: 'web', names: ['web.test'] }];
      const issuerA = new GatedIssuer();
      const a = createCertificateManager({
        store: spy.store,
        issuer: issuerA,
        logger: silentLogger,
        certificates,
      });
      cleanup.push(() => a.stop());
      await a.start();
      await a.ready();
      const first = a.certificate('web')!.serial;

      // A renews; its issuer holds the answer while the lease lapses and B renews.
      let open_!: () => void;
      issuerA.gate = new Promise((resolve) => {
        open_ = resolve;
      });
      const entered = new Promise<void>((resolve) => {
        issuerA.entered = resolve;
      });
      const failed = new Promise<ManagerEvents['renewalFailed'][0]>((resolve) =>
        a.once('renewalFailed', resolve),
      );
      const renewing = a.renewNow('web').catch((error: unknown) => error);
      await entered;
      const leaseA = spy.leases.at(-1)!;
      expect(leaseA.name).toBe(layout.issueLock('web'));
      // The store lets A's lease go, as its expiry would.
      await shared.unlock(leaseA);

      const b = createCertificateManager({
        store: shared,
        issuer: new SwitchableIssuer(),
        logger: silentLogger,
        certificates,
        reconcileIntervalMs: 0,
      });
      cleanup.push(() => b.stop());
      await b.start();
      await b.renewNow('web');
      const committedByB = b.certificate('web')!.serial;
      expect(committedByB).not.toBe(first);

      open_();
      expect(await renewing).toMatchObject({ code: 'LOCK_LOST' });
      expect((await failed).error.code).toBe('LOCK_LOST');
      // B's commit stands; A still serves what it had, not the certificate it could not commit.
      expect((await readPointer(shared, issuerA.id, 'web'))!.serial).toBe(committedByB);
      expect(a.certificate('web')!.serial).toBe(first);
    });

    it('commitGeneration and revertPointer refuse a lease that is no longer the lock’s', async () => {
      const { store, drop } = await open!();
      cleanup.push(drop, () => store.close());
      const issuer = new SwitchableIssuer();
      const m = createCertificateManager({
        store,
        issuer,
        logger: silentLogger,
        certificates: [{ id: 'web', names: ['web.test'] }],
      });
      cleanup.push(() => m.stop());
      await m.start();
      await m.ready();
      const meta = (await readPointer(store, issuer.id, 'web'))!;
      const stale = await store.lock(layout.issueLock('web'), { ttlMs: 5_000 });
      await store.unlock(stale);
      const next = await store.lock(layout.issueLock('web'), { ttlMs: 5_000 });
      cleanup.push(() => store.unlock(next).catch(() => {}));
      const { previous: _p, ...facts } = meta;
      await expect(
        revertPointer(store, issuer.id, 'web', { ...facts, serial: 'ab' }, [], stale),
      ).rejects.toMatchObject({
        code: 'LOCK_LOST',
      });
      const credentials = m.credentials('web')!;
      const info = m.certificate('web')!;
      expect(info.serial).toBe(meta.serial);
      const generation = {
        issuer: issuer.id,
        chainPem: credentials.chainPem,
        key: credentials.key,
        info: (await import('../../src/crypto/inspect.js')).parseCertificates(credentials.chainPem)[0]!.info,
        chain: [],
        storedAt: Date.now(),
      };
      await expect(
        commitGeneration(store, 'web', generation, { ...facts, serial: 'cd' }, null, { fence: stale }),
      ).rejects.toMatchObject({ code: 'LOCK_LOST' });
      expect((await readPointer(store, issuer.id, 'web'))!.serial).toBe(meta.serial);
      // The current holder's fenced write goes through.
      await revertPointer(store, issuer.id, 'web', facts, [], next);
      expect((await readPointer(store, issuer.id, 'web'))!.previous).toBeNull();
    });
  });
}
