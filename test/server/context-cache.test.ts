// ContextCache: one SecureContext per generation, built once, least-recently-used beyond a bound;
// and on a real server, a cache smaller than the number of SNI certificates still serves each
// name its own certificate (contexts are rebuilt after eviction).
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ContextCache } from '../../src/server/context-cache.js';
import { createTlsServer } from '../../src/server/create-server.js';
import { handshake } from '../support/tls.js';
import { cleanup, serve, servedSerial, startManager } from './harness.js';

afterEach(cleanup);

/** A cache whose builder counts calls per key and returns a real (empty) SecureContext. */
function counting(max?: number) {
  const cache = new ContextCache(max);
  const builds: string[] = [];
  const get = (key: string) =>
    cache.getOrCreate(key, () => {
      builds.push(key);
      return tls.createSecureContext();
    });
  return { cache, builds, get };
}

describe('ContextCache', () => {
  it('builds a context once per key and returns the same object after', () => {
    const { cache, builds, get } = counting();
    const a = get('a');
    expect(get('a')).toBe(a);
    expect(cache.get('a')).toBe(a);
    expect(get('b')).not.toBe(a);
    expect(builds).toEqual(['a', 'b']);
    expect(cache.size).toBe(2);
  });

  it('never holds more than its bound; the least recently inserted goes first', () => {
    const { cache, builds, get } = counting(3);
    for (const key of ['a', 'b', 'c', 'd', 'e']) get(key);
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
    expect(builds).toEqual(['a', 'b', 'c', 'd', 'e']);
    // An evicted context is built again when needed.
    get('a');
    expect(builds.at(-1)).toBe('a');
    expect(cache.size).toBe(3);
  });

  it('a hit (get or getOrCreate) makes an entry the most recent', () => {
    const { cache, get } = counting(3);
    const a = get('a');
    get('b');
    get('c');
    expect(cache.get('a')).toBe(a); // a is now the most recent: b is the oldest
    get('d');
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(a);
    get('c'); // c refreshed by getOrCreate: d is now the oldest (order d, a, c)
    get('e');
    expect(cache.get('d')).toBeUndefined();
    expect(cache.get('a')).toBe(a);
    expect(cache.get('c')).toBeDefined();
  });

  it('a miss does not change the order or the size', () => {
    const { cache, get } = counting(2);
    get('a');
    get('b');
    expect(cache.get('zzz')).toBeUndefined();
    get('c');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(2);
  });

  it('delete() and clear() drop entries', () => {
    const { cache, builds, get } = counting();
    get('a');
    get('b');
    cache.delete('a');
    cache.delete('missing');
    expect(cache.size).toBe(1);
    get('a');
    expect(builds).toEqual(['a', 'b', 'a']);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('b')).toBeUndefined();
  });

  it('defaults to a bound of 1000', () => {
    const cache = new ContextCache();
    for (let i = 0; i < 1001; i++) cache.getOrCreate(`k${i}`, () => ({}) as tls.SecureContext);
    expect(cache.size).toBe(1000);
    expect(cache.get('k0')).toBeUndefined();
    expect(cache.get('k1')).toBeDefined();
  });
});

describe('contextCacheSize on a server', () => {
  it('with a cache of 1, alternating SNI names still get their own certificates', async () => {
    const certificates = [
      { id: 'web', names: ['localhost'] },
      { id: 'a', names: ['a.test'] },
      { id: 'b', names: ['b.test'] },
      { id: 'c', names: ['c.test'] },
    ];
    const { manager, root } = await startManager(certificates);
    const server = createTlsServer(manager, {}, (socket) => socket.end(), { contextCacheSize: 1 });
    const port = await serve(server);
    for (const servername of ['a.test', 'b.test', 'c.test', 'a.test', 'c.test', 'b.test']) {
      const served = await handshake(port, { servername, ca: root, rejectUnauthorized: true });
      expect(served.serial, servername).toBe(servedSerial(manager, servername[0]!));
    }
    // After a renewal of an evicted certificate, the new one is built and served.
    await manager.renewNow('a');
    expect((await handshake(port, { servername: 'a.test' })).serial).toBe(servedSerial(manager, 'a'));
  });
});
