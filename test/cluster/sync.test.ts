// ClusterSync in process, on a store whose change notifications are down when the replica
// starts (found by test/cluster/faults.test.ts: a replica starting during a store outage never
// subscribed later, so it missed other replicas' renewals until a periodic reconcile and never
// held their TLS-ALPN-01 challenges, for its whole life).
import { afterEach, describe, expect, it } from 'vitest';
import { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import { alpnRecordKey, createAlpnCertificate } from '../../src/challenges/tls-alpn-01/solver.js';
import { ClusterSync } from '../../src/cluster/sync.js';
import { layout } from '../../src/store/layout.js';
import { FakeClock } from '../../src/testing/index.js';
import { WatchedMemoryStore } from '../support/watched-memory-store.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const syncs: ClusterSync[] = [];
afterEach(async () => {
  for (const sync of syncs.splice(0)) await sync.stop();
});

function setup() {
  const clock = new FakeClock();
  const store = new WatchedMemoryStore();
  store.down = true;
  const alpn = new AlpnChallengeRegistry();
  const resyncs: number[] = [];
  const sync = new ClusterSync(
    {
      store,
      clock,
      logger: quiet,
      alpn,
      replicaId: 'late-replica',
      onPointer: () => {},
      onResync: () => resyncs.push(clock.now()),
      answersTlsAlpn: ({ value }) => value === 'late.test',
    },
    { reconcileIntervalMs: 0 },
  );
  syncs.push(sync);
  return { clock, store, alpn, resyncs, sync };
}

describe('ClusterSync when the store is unreachable at start-up', () => {
  it('keeps trying to subscribe, then joins, re-reads everything and holds challenges', async () => {
    const { clock, store, alpn, resyncs, sync } = setup();
    await sync.start();
    expect(store.attempts).toBe(1);
    expect(store.watchers).toBe(0);

    // Still down at the first retries: it keeps trying, with growing pauses.
    await clock.advance(1_000);
    await clock.advance(2_000);
    expect(store.attempts).toBe(3);

    store.down = false;
    await clock.advance(5_000);
    expect(store.watchers).toBe(2);
    expect(resyncs).toHaveLength(1);
    expect(await store.get(layout.member('late-replica'))).not.toBeNull();

    // Now it holds (and acknowledges) another replica's TLS-ALPN-01 challenge.
    const credentials = await createAlpnCertificate({
      type: 'tls-alpn-01',
      identifier: { type: 'dns', value: 'late.test' },
      wildcard: false,
      token: 'token',
      keyAuthorization: 'token.thumbprint',
    });
    await store.put(alpnRecordKey('late.test'), JSON.stringify(credentials));
    for (let i = 0; i < 50 && !(await store.get(layout.alpnAck('late.test', 'late-replica'))); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(alpn.get('late.test')).toBeDefined();
    expect(await store.get(layout.alpnAck('late.test', 'late-replica'))).not.toBeNull();
  });

  it('stops retrying when stopped', async () => {
    const { clock, store, sync } = setup();
    await sync.start();
    await sync.stop();
    store.down = false;
    await clock.advance(60_000);
    expect(store.attempts).toBe(1);
    expect(store.watchers).toBe(0);
  });

  it('beats again at once after a resync (a store restarted empty lost the heartbeat), keeping one timer', async () => {
    const { clock, store, sync } = setup();
    store.down = false;
    await sync.start();
    const member = layout.member('late-replica');
    expect(await store.get(member)).not.toBeNull();
    const timers = clock.pending;
    await store.delete(member);
    store.resync();
    for (let i = 0; i < 50 && !(await store.get(member)); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await store.get(member)).not.toBeNull();
    expect(clock.pending).toBe(timers);
  });
});
