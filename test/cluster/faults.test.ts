// Replica processes under faults, against Pebble: the replica running an order killed with
// SIGKILL, Redis killed and restarted empty, every PostgreSQL connection of the fleet terminated,
// and a replica starting while its shared store is down but its local copy is good.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { clusterFixture, uniqueName } from '../support/cluster/fixture.js';
import type { ReplicaMessage, ReplicaStoreConfig } from '../support/cluster/protocol.js';
import { type RedisServer, redisServerAvailable, startRedisServer } from '../support/cluster/redis-server.js';
import {
  commonFingerprint,
  fingerprints,
  lockHolder,
  type Replica,
  servedFingerprint,
} from '../support/cluster/replicas.js';
import { describePebble } from '../support/pebble.js';
import { eventually, postgresPeer, redisPeer, sleep } from '../support/services.js';

const redisUrl = await redisPeer();
const postgresUrl = await postgresPeer();
const ownRedis = redisServerAvailable();

const dump = (replicas: Replica[]) => replicas.map((r) => r.output()).join('\n');

describePebble('replica processes under faults', () => {
  const cluster = clusterFixture();
  const redisAdmin = redisUrl ? new Redis(redisUrl, { lazyConnect: true }) : undefined;
  const pgAdmin = postgresUrl ? new pg.Pool({ connectionString: postgresUrl, max: 1 }) : undefined;
  pgAdmin?.on('error', () => {});
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await redisAdmin?.quit();
    await pgAdmin?.end();
  });

  async function privateRedis(): Promise<RedisServer> {
    const server = await startRedisServer();
    servers.push(server);
    cluster.onCleanup(() => server.kill());
    return server;
  }

  /** Starts `replicas`, waits for one common certificate (exactly one order), returns it. */
  async function converge(replicas: Replica[], name: string): Promise<string> {
    for (const r of replicas) r.go();
    const first = await eventually(() => commonFingerprint(replicas, name, cluster.rootPem), 30_000, 100);
    expect(first, dump(replicas)).toBeTruthy();
    expect(cluster.ordersFor(name)).toBe(1);
    return first!;
  }

  /** Forces a renewal on `renewer` and waits until every replica serves the new certificate. */
  async function renewEverywhere(replicas: Replica[], renewer: Replica, name: string, previous: string) {
    const since = Date.now();
    // Retried by the manager itself after a failure (the store may still be reconnecting).
    await renewer.call('renewNow', 'web');
    const renewed = await renewer.waitForEvent('renewed', 'web', 30_000, since);
    const next = await eventually(
      async () => {
        const common = await commonFingerprint(replicas, name, cluster.rootPem);
        return common && common !== previous ? common : null;
      },
      15_000,
      100,
    );
    expect(next, dump(replicas)).toBeTruthy();
    return { fingerprint: next!, spreadMs: Date.now() - renewed.at };
  }

  it.runIf(redisUrl)(
    'kill -9 of the replica holding the order lock mid-order: another takes over after the lease lapses and completes',
    async () => {
      const prefix = `certkeeper-cluster-${randomUUID()}`;
      cluster.onCleanup(async () => {
        const keys = await redisAdmin!.keys(`${prefix}:*`);
        if (keys.length > 0) await redisAdmin!.unlink(...keys);
      });
      const name = uniqueName('kill');
      const lockTtlMs = 2_000;
      const replicas = await cluster.start({
        store: () => ({ kind: 'redis', url: redisUrl!, prefix }),
        challenge: 'http-01',
        names: [name],
        lockTtlMs,
      });
      cluster.routeToAll(replicas);
      // The CA's validation stalls: the order is certainly under way when its holder dies.
      cluster.validation.hold();
      for (const r of replicas) r.go();
      await eventually(() => cluster.validation.held > 0, 30_000, 20);
      const victim = lockHolder(replicas);
      expect(victim, dump(replicas)).toBeDefined();
      expect(cluster.ordersFor(name)).toBe(1);
      const held = victim!.messages.find((m) => m.type === 'locked');
      await victim!.kill();
      const killedAt = Date.now();
      cluster.validation.release();

      const survivors = replicas.filter((r) => r !== victim);
      const fingerprint = await eventually(
        () => commonFingerprint(survivors, name, cluster.rootPem),
        30_000,
        100,
      );
      expect(fingerprint, dump(replicas)).toBeTruthy();
      const servedAfterKillMs = Date.now() - killedAt;
      // The dead replica's order was abandoned; exactly one more completed it.
      expect(cluster.ordersFor(name)).toBe(2);
      const successor = survivors.find((r) => r.events('obtained', 'web').length > 0);
      expect(successor, dump(replicas)).toBeDefined();
      const taken = successor!.messages.find((m) => m.type === 'locked');
      // Fencing: the successor's lease is a later one than the dead holder's.
      expect(taken && held && taken.token > held.token).toBe(true);
      const takeoverMs = taken!.at - killedAt;
      // The other survivor adopted what the successor stored.
      const other = survivors.find((r) => r !== successor)!;
      expect(other.events('obtained', 'web')).toEqual([]);
      expect(other.events('adopted', 'web').length).toBeGreaterThanOrEqual(1);
      console.info(
        `[cluster] kill -9 of the order holder (lock ttl ${lockTtlMs} ms): lock taken over ${takeoverMs} ms ` +
          `after the kill, both survivors served the new certificate ${servedAfterKillMs} ms after it; orders: 2`,
      );
    },
    60_000,
  );

  it.runIf(ownRedis)(
    'Redis killed and restarted empty: replicas keep serving, resubscribe, and answer a TLS-ALPN-01 renewal ordered by another',
    async () => {
      const redis = await privateRedis();
      const name = uniqueName('redis-restart');
      const replicas = await cluster.start({
        store: () => ({ kind: 'redis', url: redis.url, prefix: 'ck', timeoutMs: 2_000 }),
        challenge: 'tls-alpn-01',
        names: [name],
      });
      cluster.routeToNonHolders(replicas);
      const first = await converge(replicas, name);

      await redis.kill();
      // Down long enough for every connection to notice and start reconnecting.
      await sleep(1_000);
      expect(await fingerprints(replicas, name, cluster.rootPem)).toEqual([first, first, first]);
      await redis.start();
      const restartedAt = Date.now();

      const renewer = replicas[1]!;
      const { spreadMs } = await renewEverywhere(replicas, renewer, name, first);
      expect(cluster.ordersFor(name)).toBe(2);
      // The CA reached only the two others, which held the challenge in memory from a store
      // that had just come back empty.
      const validators = cluster.validatedBy(replicas, restartedAt);
      expect(validators.length).toBeGreaterThan(0);
      expect(validators).not.toContain(renewer.id);
      for (const r of replicas.filter((x) => x !== renewer)) {
        expect(r.events('adopted', 'web').filter((e) => e.at >= restartedAt).length).toBeGreaterThanOrEqual(
          1,
        );
      }
      for (const r of replicas) {
        expect(
          r.messages.filter((m) => m.type === 'warning'),
          r.output(),
        ).toEqual([]);
        // Each one noticed the outage of its change notifications and came back from it.
        expect(
          r.messages.some((m) => m.type === 'log' && m.message.includes('change notifications interrupted')),
          r.output(),
        ).toBe(true);
      }
      console.info(
        `[cluster] Redis restarted empty: served throughout; a renewal after the restart reached all three ${spreadMs} ms after "renewed"`,
      );
    },
    60_000,
  );

  it.runIf(postgresUrl)(
    'PostgreSQL connections terminated: the store recovers, LISTEN resumes, a renewal spreads by NOTIFY',
    async () => {
      const table = `ck_cluster_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
      const applicationName = `${table}-app`;
      cluster.onCleanup(() => pgAdmin!.query(`DROP TABLE IF EXISTS public.${table}, public.${table}_locks`));
      const name = uniqueName('pg-drop');
      const replicas = await cluster.start({
        store: (): ReplicaStoreConfig => ({ kind: 'postgres', url: postgresUrl!, table, applicationName }),
        challenge: 'tls-alpn-01',
        names: [name],
      });
      cluster.routeToNonHolders(replicas);
      const first = await converge(replicas, name);

      const listeners = async () =>
        Number(
          (
            await pgAdmin!.query(
              `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
              [applicationName],
            )
          ).rows[0].n,
        );
      expect(await eventually(async () => (await listeners()) === 3, 10_000)).toBe(true);
      const terminated = await pgAdmin!.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
      expect(terminated.rowCount).toBeGreaterThanOrEqual(3);
      const droppedAt = Date.now();
      expect(await fingerprints(replicas, name, cluster.rootPem)).toEqual([first, first, first]);
      // Every replica LISTENs again on a new connection.
      expect(await eventually(async () => (await listeners()) === 3, 15_000, 100)).toBe(true);
      const relistenMs = Date.now() - droppedAt;

      const renewer = replicas[2]!;
      const { spreadMs } = await renewEverywhere(replicas, renewer, name, first);
      expect(cluster.ordersFor(name)).toBe(2);
      for (const r of replicas.filter((x) => x !== renewer)) {
        // The event comes over IPC: it may land just after the handshake that saw the new certificate.
        const adopted = () => r.events('adopted', 'web').filter((e) => e.at >= droppedAt).length;
        expect(await eventually(() => adopted() >= 1, 5_000)).toBe(true);
      }
      for (const r of replicas)
        expect(
          r.messages.filter((m) => m.type === 'warning'),
          r.output(),
        ).toEqual([]);
      console.info(
        `[cluster] PostgreSQL backends terminated (${terminated.rowCount}): all three LISTEN again within ${relistenMs} ms; ` +
          `a renewal reached all ${spreadMs} ms after "renewed"`,
      );
    },
    60_000,
  );

  it.runIf(ownRedis)(
    'shared store down at start-up, valid local copy: the replica serves at once, then rejoins the fleet when the store is back',
    async () => {
      const redis = await privateRedis();
      const cacheDir = await mkdtemp(join(tmpdir(), 'certkeeper-cluster-cache-'));
      cluster.onCleanup(() => rm(cacheDir, { recursive: true, force: true }));
      const name = uniqueName('cached');
      const cached = (): ReplicaStoreConfig => ({
        kind: 'cached-redis',
        url: redis.url,
        prefix: 'ck',
        cacheDir,
        timeoutMs: 2_000,
      });
      const [before] = await cluster.start({
        count: 1,
        store: cached,
        challenge: 'tls-alpn-01',
        names: [name],
      });
      cluster.routeToAll([before!]);
      const first = await converge([before!], name);
      await before!.stop();
      await redis.kill();

      const [after] = await cluster.start({
        count: 1,
        store: cached,
        challenge: 'tls-alpn-01',
        names: [name],
      });
      const goAt = Date.now();
      after!.go();
      const served = await eventually(
        () => servedFingerprint(after!.httpsPort, name, cluster.rootPem).catch(() => null),
        15_000,
        25,
      );
      const servedAfterMs = Date.now() - goAt;
      expect(served, after!.output()).toBe(first);
      expect(cluster.ordersFor(name)).toBe(1);
      expect(after!.events('loaded', 'web')).toHaveLength(1);
      expect(after!.events('obtaining', 'web')).toEqual([]);
      const logged = (text: string) => (m: ReplicaMessage) => m.type === 'log' && m.message.includes(text);
      expect(after!.messages.some(logged('reading the local copy')), after!.output()).toBe(true);

      // Redis comes back (empty). The replica subscribes by itself and joins the membership...
      await redis.start();
      await after!.waitFor(logged('change notifications available again'), 15_000, 'resubscription');
      const rejoinedMs = Date.now() - goAt;
      // ...so when a new replica orders with TLS-ALPN-01 and the CA reaches only the late one,
      // it answers from memory, and it adopts the result from the notification.
      const [orderer] = await cluster.start({
        count: 1,
        store: () => ({ kind: 'redis', url: redis.url, prefix: 'ck', timeoutMs: 2_000 }),
        challenge: 'tls-alpn-01',
        names: [name],
      });
      const since = Date.now();
      cluster.routeToNonHolders([after!, orderer!]);
      orderer!.go();
      await orderer!.waitForEvent('obtained', 'web', 30_000);
      const both = await eventually(
        async () => {
          const common = await commonFingerprint([after!, orderer!], name, cluster.rootPem);
          return common && common !== first ? common : null;
        },
        15_000,
        100,
      );
      expect(both, dump([after!, orderer!])).toBeTruthy();
      expect(cluster.ordersFor(name)).toBe(2);
      const validators = cluster.validatedBy([after!, orderer!], since);
      expect(validators.length).toBeGreaterThan(0);
      expect(new Set(validators)).toEqual(new Set([after!.id]));
      expect(after!.events('adopted', 'web').length).toBeGreaterThanOrEqual(1);
      console.info(
        `[cluster] Redis down at start-up: served the local copy ${servedAfterMs} ms after start; ` +
          `subscribed ${rejoinedMs} ms after start once Redis was back, then answered another replica's TLS-ALPN-01 validation`,
      );
    },
    60_000,
  );
});
