// What every cluster suite sets up once: Pebble whose VA dials a validation proxy in front of the
// replicas, an ACME proxy in front of Pebble that records every newOrder (the order count is
// taken at the CA, not from what the replicas say), and Pebble's root for verifying handshakes.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type AcmeProxy, startAcmeProxy } from '../acme-proxy.js';
import { type Pebble, startPebble } from '../pebble.js';
import type { ReplicaConfig, ReplicaStoreConfig } from './protocol.js';
import { lockHolder, type Replica, startReplicas } from './replicas.js';
import { startValidationProxy, type ValidationKind, type ValidationProxy } from './validation-proxy.js';

export interface ClusterFixture {
  pebble: Pebble;
  acme: AcmeProxy;
  validation: ValidationProxy;
  rootPem: string;
  /** Replicas started by this test (killed after it, whatever happened). */
  replicas: Replica[];
  /** Three (or `count`) replica processes on one store, servers listening, managers not started. */
  start(options: FleetOptions): Promise<Replica[]>;
  /** newOrders Pebble accepted (201) for `name`. */
  ordersFor(name: string): number;
  /** Routes validations round-robin to live replicas other than the one holding the issue lock. */
  routeToNonHolders(replicas: Replica[]): void;
  /** Routes validations round-robin to every live replica. */
  routeToAll(replicas: Replica[]): void;
  /** Which replica each routed validation connection went to (by port), from `since` on. */
  validatedBy(replicas: Replica[], since?: number): string[];
  /** Runs after each test, after the replicas are killed (store clean-up). */
  onCleanup(fn: () => Promise<unknown>): void;
}

export interface FleetOptions {
  count?: number;
  store: (index: number) => ReplicaStoreConfig;
  challenge: ReplicaConfig['challenge'];
  names: string[];
  lockTtlMs?: number;
  reconcileIntervalMs?: number;
}

/** A fresh `*.cluster.test` name: every test orders its own, so counts at Pebble are its own. */
export const uniqueName = (label: string) => `${label}-${randomUUID().slice(0, 8)}.cluster.test`;

export function clusterFixture(): ClusterFixture {
  // One encryption key for every replica of the suite: replicas started by separate start()
  // calls in one test share a store and must read each other's private keys.
  const key = randomBytes(32).toString('base64');
  const cleanups: (() => Promise<unknown>)[] = [];
  const fixture = {
    replicas: [] as Replica[],
    ordersFor(name: string) {
      return fixture.acme.orders.filter(
        (o) => o.status === 201 && o.identifiers.some((i) => i.value === name),
      ).length;
    },
    async start(options: FleetOptions) {
      const replicas = await startReplicas(options.count ?? 3, (i) => ({
        replicaId: `replica-${i}-${randomUUID().slice(0, 6)}`,
        store: options.store(i),
        encryptionKey: key,
        directoryUrl: fixture.acme.directoryUrl,
        caPem: fixture.acme.caPem,
        rootPem: fixture.rootPem,
        challenge: options.challenge,
        certificates: [{ id: 'web', names: options.names }],
        lockTtlMs: options.lockTtlMs ?? 10_000,
        // Off by default: a replica that picks up another's certificate within seconds can then
        // only have been told by the store's change notifications.
        reconcileIntervalMs: options.reconcileIntervalMs ?? 0,
      }));
      fixture.replicas.push(...replicas);
      return replicas;
    },
    routeToNonHolders(replicas: Replica[]) {
      fixture.validation.route = (kind: ValidationKind) => {
        const holder = lockHolder(replicas);
        return pick(
          kind,
          replicas.filter((r) => r.alive && r !== holder),
        );
      };
    },
    routeToAll(replicas: Replica[]) {
      fixture.validation.route = (kind: ValidationKind) =>
        pick(
          kind,
          replicas.filter((r) => r.alive),
        );
    },
    validatedBy(replicas: Replica[], since = 0) {
      return fixture.validation.connections
        .filter((c) => c.at >= since)
        .map((c) => replicas.find((r) => r.httpPort === c.port || r.httpsPort === c.port)?.id ?? 'nobody');
    },
    onCleanup(fn: () => Promise<unknown>) {
      cleanups.push(fn);
    },
  } as ClusterFixture;

  const turn = { http: 0, tls: 0 };
  const pick = (kind: ValidationKind, among: Replica[]) => {
    const replica = among[turn[kind]++ % Math.max(1, among.length)];
    return replica && (kind === 'http' ? replica.httpPort : replica.httpsPort);
  };

  beforeAll(async () => {
    fixture.validation = await startValidationProxy();
    // Authorization reuse off: every order validates, so every order is seen by a replica.
    fixture.pebble = await startPebble({
      httpPort: fixture.validation.httpPort,
      tlsPort: fixture.validation.tlsPort,
      env: { PEBBLE_AUTHZREUSE: '0' },
    });
    fixture.acme = await startAcmeProxy({ upstream: fixture.pebble });
    fixture.rootPem = await fixture.pebble.roots();
  }, 30_000);

  afterEach(async () => {
    fixture.validation.release();
    fixture.validation.route = () => undefined;
    await Promise.all(fixture.replicas.splice(0).map((r) => r.kill()));
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
  });

  afterAll(async () => {
    await fixture.acme?.close();
    await fixture.pebble?.stop();
    await fixture.validation?.close();
  });

  return fixture;
}
