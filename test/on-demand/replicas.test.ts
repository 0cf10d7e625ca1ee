// Three replicas, each its own coordinator, CA client and server, over one Redis store: a name
// asked of all three at the same moment is ordered once, and all three serve that certificate.
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import type { OnDemandEvent } from '../../src/on-demand/events.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { redisPeer } from '../support/services.js';
import { CountingIssuer, type Rig, sansOf, startRig } from './harness.js';

const url = await redisPeer();
const KEY = randomBytes(32).toString('base64');

if (!url) {
  describe.skip('on-demand replicas on Redis (no Redis)', () => it('needs Redis', () => {}));
} else {
  const admin = new Redis(url, { lazyConnect: true });
  const prefix = `certkeeper-test-ondemand-${randomUUID()}`;
  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await admin.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    await admin.quit();
  });

  describe('on-demand replicas on Redis', () => {
    it('orders each name once across three replicas, and every replica serves it', {
      timeout: 180_000,
    }, async () => {
      const replicas: Array<{
        rig: Rig;
        issuer: CountingIssuer;
        store: RedisStore;
        events: OnDemandEvent[];
      }> = [];
      for (let i = 0; i < 3; i++) {
        const store = new RedisStore({ url, prefix, encryption: { keys: [KEY] }, logger: silentLogger });
        const issuer = new CountingIssuer();
        const rig = await startRig(issuer, store, {
          decide: () => true,
          waitMs: 60_000,
          limits: { perDomain: 100 },
        });
        const events: OnDemandEvent[] = [];
        rig.coordinator.events.on((e) => events.push(e));
        replicas.push({ rig, issuer, store, events });
      }
      try {
        const names = Array.from({ length: 15 }, (_, i) => `r${i}.replicas.test`);
        const results = await Promise.all(
          names.map((name) => Promise.all(replicas.map(({ rig }) => rig.served(name)))),
        );
        for (const [i, perReplica] of results.entries()) {
          expect(perReplica.map(sansOf)).toEqual([[names[i]], [names[i]], [names[i]]]);
          // The same certificate everywhere: one replica ordered, the others adopted it.
          expect(new Set(perReplica.map((s) => s.serial)).size).toBe(1);
          const orders = replicas.reduce((sum, { issuer }) => sum + (issuer.perName.get(names[i]!) ?? 0), 0);
          expect(orders, names[i]).toBe(1);
        }
        const adopted = replicas.flatMap(({ events }) => events.filter((e) => e.type === 'loaded'));
        expect(adopted).toHaveLength(names.length * 2);
      } finally {
        for (const { rig, store } of replicas) {
          await rig.close();
          await store.close();
        }
      }
    });
  });
}
