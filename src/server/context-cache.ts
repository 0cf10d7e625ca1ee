/**
 * SecureContexts, one per certificate generation and option set, built once and reused.
 * `tls.createSecureContext` costs ~1–2 ms of CPU and ~20 KiB per context (docs/platform.md, "Node TLS"), so
 * it must never run per handshake, and with thousands of certificates contexts are built lazily
 * on the first handshake that needs them and evicted least-recently-used beyond a bound.
 */
import type tls from 'node:tls';
import { LruCache } from '../lru.js';

export class ContextCache extends LruCache<string, tls.SecureContext> {
  constructor(max = 1000) {
    super(max);
  }
}
