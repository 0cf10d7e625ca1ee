/**
 * Who shares the store. Each manager on a store with change notification (`watch`) writes a
 * heartbeat under `cluster/members/<replica>`; a record older than its TTL is a replica that is
 * gone. The only thing certkeeper needs membership for is TLS-ALPN-01: an order waits until every
 * live replica holds its challenge (challenges/tls-alpn-01/acks.ts).
 */
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';

export const MEMBER_TTL_MS = 15_000;

interface MemberRecord {
  at: number;
  ttlMs: number;
}

export async function heartbeat(
  store: Store,
  replicaId: string,
  now: number,
  ttlMs = MEMBER_TTL_MS,
): Promise<void> {
  await store.put(layout.member(replicaId), JSON.stringify({ at: now, ttlMs } satisfies MemberRecord));
}

export async function leave(store: Store, replicaId: string): Promise<void> {
  await store.delete(layout.member(replicaId));
}

/** Replica ids whose heartbeat is fresh. */
export async function liveMembers(store: Store, now: number): Promise<string[]> {
  const keys = await store.list(layout.members());
  const live: string[] = [];
  await Promise.all(
    keys.map(async (key) => {
      const raw = await store.get(key);
      if (!raw) return;
      try {
        const record = JSON.parse(Buffer.from(raw).toString('utf8')) as MemberRecord;
        const replica = layout.parseMember(key);
        if (replica !== null && record.at + record.ttlMs > now) live.push(replica);
      } catch {
        // A damaged heartbeat is a replica we cannot count on.
      }
    }),
  );
  return live;
}
