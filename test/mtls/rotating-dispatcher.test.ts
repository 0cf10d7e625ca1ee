// Outbound mTLS through undici with client certificates that rotate: fetch (npm undici and
// Node's global fetch) through a RotatingDispatcher while every certificate of both services is
// renewed over and over; the server compares the serial each request claims with the one it saw.
import { request, fetch as undiciFetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { createRotatingDispatcher, type RotatingDispatcher } from '../../src/mtls/rotating-dispatcher.js';
import {
  cleanupAfterEach,
  currentSerial,
  expectHonest,
  load,
  rotateRounds,
  type Service,
  serialKey,
  serveMtls,
  twoServices,
  waitFor,
} from './support.js';

const cleanups = cleanupAfterEach();

const current = currentSerial;

async function dispatcherFor(s: Service, roots: string[], graceMs?: number): Promise<RotatingDispatcher> {
  const dispatcher = await createRotatingDispatcher(s.manager, `${s.name}-client`, {
    trust: roots,
    ...(graceMs === undefined ? {} : { graceMs }),
  });
  cleanups.push(() => dispatcher.destroy());
  return dispatcher;
}

type FetchLike = (
  url: string,
  init: { dispatcher: unknown; headers: Record<string, string> },
) => Promise<Response>;

async function call(fetcher: FetchLike, port: number, dispatcher: RotatingDispatcher, serial: string) {
  const res = await fetcher(`https://localhost:${port}/`, {
    dispatcher,
    headers: { 'x-client-serial': serial },
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return body;
}

describe('RotatingDispatcher (undici)', () => {
  for (const [name, fetcher] of [
    ['undici fetch', undiciFetch as unknown as FetchLike],
    // Node 20's global fetch is its bundled undici (6.x); it takes an npm-undici 7 Dispatcher.
    ["Node's global fetch", fetch as unknown as FetchLike],
  ] as const) {
    it(`${name} while both services rotate every second: zero failed calls, never an old client certificate`, async () => {
      const [a, b] = await twoServices(cleanups);
      const roots = [a.root, b.root];
      const server = await serveMtls(b, roots, cleanups);
      const dispatcher = await dispatcherFor(a, roots);
      const rotation = rotateRounds([a, b], 4, 1000);
      const calls = load(rotation, 6, () => call(fetcher, server.port, dispatcher, current(a, 'a-client')));
      const [result, { rotations, retired }] = await Promise.all([calls, rotation]);
      expect(rotations).toBe(16);
      expect(result.failures).toEqual([]);
      expect(result.ok).toBeGreaterThan(50);
      expectHonest(server.seen, retired.get('a-client'));
      await waitFor(() => dispatcher.stats().generations === 1, 5000, 'retired agents to close');
      console.info(`[rotating-dispatcher] ${name}: ${rotations} rotations, ${result.ok} calls, 0 failed`);
    });
  }

  it('a rotation mid-request: the in-flight request finishes on the old identity, new requests present the new one', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const dispatcher = await dispatcherFor(a, [a.root, b.root]);
    const first = current(a, 'a-client');
    const slow = request(`https://localhost:${server.port}/slow?ms=800`, {
      dispatcher,
      headers: { 'x-client-serial': first },
    }).then((res) => res.body.text());
    await waitFor(() => server.pending === 1, 5000, 'the slow request to arrive');
    await a.manager.renewNow('a-client');
    const second = current(a, 'a-client');
    expect(dispatcher.stats()).toEqual({ serial: second, generations: 2 });
    expect(await call(undiciFetch as unknown as FetchLike, server.port, dispatcher, second)).toBe(
      'hello from b',
    );
    expect(server.pending).toBe(1);
    expect(await slow).toBe('hello from b');
    await waitFor(() => dispatcher.stats().generations === 1, 5000, 'the retired agent to close');
    await waitFor(() => server.connections.size === 1, 5000, "the retired agent's connection to close");
    expect(server.seen.map((s) => [s.path, s.presented])).toEqual([
      ['/slow?ms=800', serialKey(first)],
      ['/', serialKey(second)],
    ]);
  });

  it('a retired request that outlives graceMs is destroyed (undici error code), the generation goes', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const dispatcher = await dispatcherFor(a, [a.root, b.root], 200);
    const outcome = request(`https://localhost:${server.port}/slow?ms=8000`, { dispatcher }).then(
      () => 'answered',
      (error: { code?: string }) => error.code,
    );
    await waitFor(() => server.pending === 1, 5000, 'the request to arrive');
    await a.manager.renewNow('a-client');
    expect(await outcome).toBe('UND_ERR_DESTROYED');
    await waitFor(() => dispatcher.stats().generations === 1, 5000, 'the retired agent to go');
  });

  it('close(): in-flight requests finish, later ones fail with AGENT_CLOSED; close and destroy are idempotent', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const dispatcher = await dispatcherFor(a, [a.root, b.root]);
    const slow = request(`https://localhost:${server.port}/slow?ms=300`, { dispatcher }).then((res) =>
      res.body.text(),
    );
    await waitFor(() => server.pending === 1, 5000, 'the request to arrive');
    const closed = dispatcher.close();
    await expect(
      request(`https://localhost:${server.port}/`, { dispatcher }).then((r) => r.body.text()),
    ).rejects.toMatchObject({ code: 'AGENT_CLOSED' });
    await expect(undiciFetch(`https://localhost:${server.port}/`, { dispatcher })).rejects.toMatchObject({
      cause: { code: 'AGENT_CLOSED' },
    });
    expect(await slow).toBe('hello from b');
    await closed;
    await dispatcher.close();
    await dispatcher.destroy();
    expect(dispatcher.stats()).toEqual({ serial: undefined, generations: 0 });
  });
});
