/**
 * Who shares the store. Each manager on a store with change notification (`watch`) writes a
 * heartbeat under `cluster/members/<replica>`; a record older than its TTL is a replica that is
 * gone. The only thing certkeeper needs membership for is TLS-ALPN-01: the CA's validation
 * connection may land on any replica, and the ALPN callback that answers it is synchronous, so
 * the order may only proceed once every live replica holds the challenge certificate in memory
 * (each acknowledges under `challenges/tls-alpn-01-acks/<name>/<replica>`, with the digest of
 * the challenge it holds: acknowledgements are kept per name, and one left from an earlier
 * challenge for that name, whose orderer died before its clean-up, must not count for the next).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
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
  const prefix = 'cluster/members';
  const keys = await store.list(prefix);
  const live: string[] = [];
  await Promise.all(
    keys.map(async (key) => {
      const raw = await store.get(key);
      if (!raw) return;
      try {
        const record = JSON.parse(Buffer.from(raw).toString('utf8')) as MemberRecord;
        if (record.at + record.ttlMs > now) live.push(key.slice(prefix.length + 1));
      } catch {
        // A damaged heartbeat is a replica we cannot count on.
      }
    }),
  );
  return live;
}

/** Identifies one stored challenge (the bytes of its record), so an acknowledgement names what it holds. */
export function alpnDigest(record: Uint8Array | string): string {
  return createHash('sha256').update(record).digest('base64url');
}

export async function ackAlpn(
  store: Store,
  servername: string,
  replicaId: string,
  digest: string,
): Promise<void> {
  await store.put(layout.alpnAck(servername, replicaId), digest);
}

export async function clearAlpnAcks(store: Store, servername: string): Promise<void> {
  const prefix = layout.alpnAck(servername, 'x').replace(/\/x$/, '');
  for (const key of await store.list(prefix)) await store.delete(key);
}

/**
 * Waits until every other live replica acknowledged the challenge `digest` for `servername`.
 * Returns the replicas that did not within the timeout (the caller decides whether to go on).
 */
export async function waitForAlpnAcks(
  store: Store,
  servername: string,
  self: string,
  options: { digest: string; timeoutMs: number; signal: AbortSignal; now: () => number },
): Promise<string[]> {
  const deadline = Date.now() + options.timeoutMs;
  const prefix = layout.alpnAck(servername, 'x').replace(/\/x$/, '');
  for (;;) {
    const members = (await liveMembers(store, options.now())).filter((m) => m !== self);
    if (members.length === 0) return [];
    const listed = new Set((await store.list(prefix)).map((k) => k.slice(prefix.length + 1)));
    const missing: string[] = [];
    for (const member of members) {
      const ack = listed.has(member) ? await store.get(layout.alpnAck(servername, member)) : null;
      if (!ack || Buffer.from(ack).toString('utf8') !== options.digest) missing.push(member);
    }
    if (missing.length === 0 || Date.now() >= deadline) return missing;
    await sleep(50, undefined, { signal: options.signal });
  }
}
