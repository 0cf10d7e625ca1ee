// TLS-ALPN-01 across replicas, in process: the replica ordering waits until every live replica
// acknowledged holding THIS challenge certificate. Acknowledgements are kept per name, so one left
// over from an earlier challenge for the same name (the replica that ordered was killed before
// its clean-up, as in test/cluster/faults.test.ts) must not count for the next one.
import { afterEach, describe, expect, it } from 'vitest';
import type { ChallengeContext, ChallengeTask } from '../../src/challenges/solver.js';
import { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import { TlsAlpn01Solver } from '../../src/challenges/tls-alpn-01/solver.js';
import { systemClock } from '../../src/clock.js';
import { heartbeat, liveMembers } from '../../src/cluster/membership.js';
import { ClusterSync } from '../../src/cluster/sync.js';
import { WatchedMemoryStore } from '../support/watched-memory-store.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const NAME = 'acks.test';
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const task = (token: string): ChallengeTask => ({
  type: 'tls-alpn-01',
  identifier: { type: 'dns', value: NAME },
  wildcard: false,
  token,
  keyAuthorization: `${token}.thumbprint`,
});

/** Replica `b`: a ClusterSync on the shared store with its own in-memory challenges. */
async function replicaB(store: WatchedMemoryStore) {
  const alpn = new AlpnChallengeRegistry();
  const sync = new ClusterSync(
    {
      store,
      clock: systemClock,
      logger: quiet,
      alpn,
      replicaId: 'b',
      onPointer() {},
      onResync() {},
      answersTlsAlpn: ({ value }) => value === NAME,
    },
    { reconcileIntervalMs: 0 },
  );
  await sync.start();
  stops.push(() => sync.stop());
  return { alpn, sync };
}

/** Replica `a`, ordering: its solver and issuer context; warnings recorded. */
function replicaA(store: WatchedMemoryStore, ackTimeoutMs: number) {
  const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
  const solver = new TlsAlpn01Solver();
  solver.ackTimeoutMs = ackTimeoutMs;
  const context: ChallengeContext = {
    store,
    clock: systemClock,
    logger: { ...quiet, warn: (message, fields) => warnings.push({ message, fields }) },
    signal: new AbortController().signal,
    tlsAlpn: {
      registry: new AlpnChallengeRegistry(),
      replicas: { self: 'a', live: () => liveMembers(store, Date.now()) },
    },
  };
  return { solver, context, warnings };
}

describe('TLS-ALPN-01 acknowledgements between replicas', () => {
  it('a live replica acknowledges the challenge it holds; the orderer goes on without a warning', async () => {
    const store = new WatchedMemoryStore();
    await replicaB(store);
    const a = replicaA(store, 5_000);
    await a.solver.present(task('first'), a.context);
    expect(a.warnings).toEqual([]);
  });

  it('an acknowledgement left over from an earlier challenge for the same name does not count', async () => {
    const store = new WatchedMemoryStore();
    const b = await replicaB(store);
    const first = replicaA(store, 5_000);
    await first.solver.present(task('first'), first.context);
    expect(first.warnings).toEqual([]);
    expect(b.alpn.get(NAME)).toBeDefined();
    // The orderer dies here: no clean-up, `b`'s acknowledgement of "first" stays. Then `b` stops
    // following the store (its notification connection is stuck) while its heartbeat stays fresh.
    await b.sync.stop();
    await heartbeat(store, 'b', Date.now());

    const second = replicaA(store, 300);
    await second.solver.present(task('second'), second.context);
    // `b` never held "second": the orderer must know, not take the stale acknowledgement for it.
    expect(second.warnings.map((w) => w.fields?.missing)).toEqual([['b']]);
  });

  it('the next challenge for the same name is acknowledged again by a replica that follows the store', async () => {
    const store = new WatchedMemoryStore();
    await replicaB(store);
    const first = replicaA(store, 5_000);
    await first.solver.present(task('first'), first.context);
    const second = replicaA(store, 5_000);
    await second.solver.present(task('second'), second.context);
    expect(second.warnings).toEqual([]);
  });
});
