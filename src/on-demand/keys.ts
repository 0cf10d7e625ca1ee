/**
 * The coordinator's own store keys and lock names, built in this one place from validated
 * segments (see `joinKey`). Names reaching here are normalised DNS names (`onDemandName`), which
 * are valid segments as they are.
 *
 *   on-demand/seen/<name>      when a replica last served the name (JSON `{ "at": <epoch ms> }`)
 *   on-demand/order/<name>     (lock name) ordering, renewing or removing the name's certificate
 */
import { joinKey } from '../store/layout.js';

export const onDemandKeys = {
  seenDir: 'on-demand/seen',
  seen(name: string): string {
    return joinKey('on-demand', 'seen', name);
  },
  /** The name a seen-record key is for, or null for another key. */
  nameOfSeen(key: string): string | null {
    const prefix = 'on-demand/seen/';
    return key.startsWith(prefix) && !key.slice(prefix.length).includes('/')
      ? key.slice(prefix.length)
      : null;
  },
  orderLock(name: string): string {
    return joinKey('on-demand', 'order', name);
  },
} as const;
