// Three replica processes sharing one store, each with its own HTTPS server and HTTP-01 handler,
// against Pebble. The CA's validation connections are routed only to replicas that are NOT
// running the order, so an answer can only come from what the store and the cluster sync gave
// them. Proven per store and challenge: exactly one order at the CA for the certificate, every
// replica serving the same certificate to a verifying client within seconds, and a forced
// renewal on one replica reaching the others through the store's change notifications
// (periodic reconcile is off).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { clusterFixture, uniqueName } from '../support/cluster/fixture.js';
import type { ReplicaConfig, ReplicaStoreConfig } from '../support/cluster/protocol.js';
import { commonFingerprint, type Replica } from '../support/cluster/replicas.js';
import { describePebble } from '../support/pebble.js';
import { eventually, postgresPeer, redisPeer } from '../support/services.js';

const redisUrl = await redisPeer();
const postgresUrl = await postgresPeer();

describePebble('three replica processes on one store', () => {
  const cluster = clusterFixture();
  const redisAdmin = redisUrl ? new Redis(redisUrl, { lazyConnect: true }) : undefined;
  const pgAdmin = postgresUrl ? new pg.Pool({ connectionString: postgresUrl, max: 1 }) : undefined;
  pgAdmin?.on('error', () => {});
  afterAll(async () => {
    await redisAdmin?.quit();
    await pgAdmin?.end();
  });

  function redisStore(): (i: number) => ReplicaStoreConfig {
    const prefix = `certkeeper-cluster-${randomUUID()}`;
    cluster.onCleanup(async () => {
      const keys = await redisAdmin!.keys(`${prefix}:*`);
      if (keys.length > 0) await redisAdmin!.unlink(...keys);
    });
    return () => ({ kind: 'redis', url: redisUrl!, prefix });
  }

  function postgresStore(): (i: number) => ReplicaStoreConfig {
    const table = `ck_cluster_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
    cluster.onCleanup(() => pgAdmin!.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`));
    return () => ({ kind: 'postgres', url: postgresUrl!, table, applicationName: `${table}-app` });
  }

  /** Every replica emitted `name` for the certificate (at or after `after`). */
  const allSaw = (replicas: Replica[], names: string[], after = 0) =>
    replicas.every((r) => r.events(undefined, 'web').some((e) => names.includes(e.name) && e.at >= after));

  async function oneOrderEverywhere(
    store: (i: number) => ReplicaStoreConfig,
    challenge: ReplicaConfig['challenge'],
  ) {
    const name = uniqueName(challenge === 'http-01' ? 'http' : 'alpn');
    const began = Date.now();
    const replicas = await cluster.start({ store, challenge, names: [name] });
    cluster.routeToNonHolders(replicas);
    for (const r of replicas) r.go();

    // --- first issuance: three replicas want the certificate at once -----------------------
    const obtained = await Promise.any(replicas.map((r) => r.waitForEvent('obtained', 'web', 30_000)));
    const orderer = replicas.find((r) => r.events('obtained', 'web').length > 0)!;
    const first = await eventually(() => commonFingerprint(replicas, name, cluster.rootPem), 15_000, 100);
    const allServedAfterMs = Date.now() - obtained.at;
    expect(first, replicas.map((r) => r.output()).join('\n')).toBeTruthy();
    expect(cluster.ordersFor(name)).toBe(1);
    // The two others took it from the store (lock re-check or notification), never ordering.
    for (const r of replicas.filter((x) => x !== orderer)) {
      expect(r.events('obtained', 'web')).toHaveLength(0);
      expect(r.events('adopted', 'web').length).toBeGreaterThanOrEqual(1);
    }
    const validators = cluster.validatedBy(replicas, began);
    expect(validators.length).toBeGreaterThan(0);
    expect(validators).not.toContain(orderer.id);
    expect(validators).not.toContain('nobody');

    // --- a forced renewal on another replica reaches everybody through the store's notifications
    const renewer = replicas.find((r) => r !== orderer)!;
    const since = Date.now();
    await renewer.call('renewNow', 'web');
    const renewed = await renewer.waitForEvent('renewed', 'web', 30_000, since);
    const second = await eventually(
      async () => {
        const common = await commonFingerprint(replicas, name, cluster.rootPem);
        return common && common !== first ? common : null;
      },
      15_000,
      100,
    );
    const renewalServedAfterMs = Date.now() - renewed.at;
    expect(second, replicas.map((r) => r.output()).join('\n')).toBeTruthy();
    expect(cluster.ordersFor(name)).toBe(2);
    for (const r of replicas.filter((x) => x !== renewer)) {
      expect(r.events('adopted', 'web').filter((e) => e.at >= since).length).toBeGreaterThanOrEqual(1);
    }
    expect(cluster.validatedBy(replicas, since)).not.toContain(renewer.id);
    expect(allSaw(replicas, ['renewed', 'adopted'], since)).toBe(true);

    // Nothing in the fleet complained (e.g. MaxListenersExceeded) or failed on the way.
    for (const r of replicas) {
      expect(r.messages.filter((m) => m.type === 'warning')).toEqual([]);
      expect(r.events('renewalFailed', 'web')).toEqual([]);
    }
    console.info(
      `[cluster] ${replicas[0]!.config.store.kind} ${challenge}: ` +
        `1 order for 3 replicas; all served it ${allServedAfterMs} ms after "obtained"; ` +
        `a renewal reached all ${renewalServedAfterMs} ms after "renewed"; validations answered by ` +
        `${JSON.stringify(countBy(validators))} (orderer ${orderer.id})`,
    );
  }

  it.runIf(redisUrl)(
    'RedisStore, HTTP-01: one order, all three serve it; a renewal spreads by pub/sub',
    async () => {
      await oneOrderEverywhere(redisStore(), 'http-01');
    },
    60_000,
  );

  it.runIf(redisUrl)(
    'RedisStore, TLS-ALPN-01: replicas that did not order answer the CA from memory',
    async () => {
      await oneOrderEverywhere(redisStore(), 'tls-alpn-01');
    },
    60_000,
  );

  it.runIf(postgresUrl)(
    'PostgresStore, TLS-ALPN-01 and HTTP-01: one order, all three serve it; a renewal spreads by NOTIFY',
    async () => {
      await oneOrderEverywhere(postgresStore(), 'tls-alpn-01');
      await Promise.all(cluster.replicas.splice(0).map((r) => r.kill()));
      await oneOrderEverywhere(postgresStore(), 'http-01');
    },
    60_000,
  );
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
