/**
 * Replica acknowledgements of TLS-ALPN-01 challenges. The CA's validation connection may land on
 * any replica sharing the store, and the ALPN callback that answers it is synchronous, so the
 * order may only proceed once every live replica holds the challenge certificate in memory. Each
 * replica acknowledges under `challenges/tls-alpn-01-acks/<name>/<replica>` with the digest of the
 * challenge it holds: acknowledgements are kept per name, and one left from an earlier challenge
 * for that name, whose orderer died before its clean-up, must not count for the next. Which
 * replicas are live is the caller's knowledge (cluster/membership.ts), handed in as `Replicas`.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { layout } from '../../store/layout.js';
import type { Store } from '../../store/store.js';

/** This replica and the others currently sharing the store. */
export interface Replicas {
  readonly self: string;
  /** Ids of the replicas whose heartbeat is fresh (this one included or not). */
  live(): Promise<string[]>;
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
  for (const key of await store.list(layout.alpnAcks(servername))) await store.delete(key);
}

/**
 * Waits until every other live replica acknowledged the challenge `digest` for `servername`.
 * Returns the replicas that did not within the timeout (the caller decides whether to go on).
 */
export async function waitForAlpnAcks(
  store: Store,
  servername: string,
  replicas: Replicas,
  options: { digest: string; timeoutMs: number; signal: AbortSignal },
): Promise<string[]> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const members = (await replicas.live()).filter((m) => m !== replicas.self);
    if (members.length === 0) return [];
    const listed = new Set<string>();
    for (const key of await store.list(layout.alpnAcks(servername))) {
      const replica = layout.parseAlpnAck(key)?.replica;
      if (replica !== undefined) listed.add(replica);
    }
    const missing: string[] = [];
    for (const member of members) {
      const ack = listed.has(member) ? await store.get(layout.alpnAck(servername, member)) : null;
      if (!ack || Buffer.from(ack).toString('utf8') !== options.digest) missing.push(member);
    }
    if (missing.length === 0 || Date.now() >= deadline) return missing;
    await sleep(50, undefined, { signal: options.signal });
  }
}
