// Outbound mTLS over https with client certificates that rotate: two services call each other
// continuously through RotatingAgents while every certificate of both is renewed over and over.
// Each request carries the client serial that was current when it was made; the server compares
// it with the certificate it actually verified on that request.
import { describe, expect, it } from 'vitest';
import { createRotatingAgent } from '../../src/mtls/rotating-agent.js';
import {
  cleanupAfterEach,
  currentSerial,
  expectHonest,
  get,
  load,
  mutableTrust,
  rotateRounds,
  serialKey,
  serveMtls,
  twoServices,
  waitFor,
} from './support.js';

const cleanups = cleanupAfterEach();

const current = currentSerial;

describe('RotatingAgent (https)', () => {
  it('two services calling each other while every certificate rotates: zero failed calls, never an old client certificate', async () => {
    const [a, b] = await twoServices(cleanups);
    const roots = [a.root, b.root];
    const serverA = await serveMtls(a, roots, cleanups);
    const serverB = await serveMtls(b, roots, cleanups);
    const agentA = createRotatingAgent(a.manager, 'a-client', { trust: roots });
    const agentB = createRotatingAgent(b.manager, 'b-client', { trust: roots });
    cleanups.push(
      () => agentA.destroy(),
      () => agentB.destroy(),
    );

    // The claimed serial is read from the manager, not from the agent, right before the request.
    const rotation = rotateRounds([a, b], 4, 1000);
    const calls = Promise.all([
      load(rotation, 4, () => get(serverB.port, agentA, current(a, 'a-client'))),
      load(rotation, 4, () => get(serverA.port, agentB, current(b, 'b-client'))),
    ]);
    const [[fromA, fromB], { rotations, retired }] = await Promise.all([calls, rotation]);

    expect(fromA.failures).toEqual([]);
    expect(fromB.failures).toEqual([]);
    expect(fromA.ok + fromB.ok).toBeGreaterThan(100);
    expect(rotations).toBe(16);
    expectHonest(serverB.seen, retired.get('a-client'));
    expectHonest(serverA.seen, retired.get('b-client'));
    // Retired generations are destroyed once drained: only the current one remains.
    await waitFor(() => agentA.stats().generations === 1 && agentB.stats().generations === 1);
    console.info(
      `[rotating-agent] ${rotations} rotations, ${fromA.ok + fromB.ok} calls, 0 failed, ` +
        `${new Set(serverB.seen.map((s) => s.presented)).size} client serials seen by b`,
    );
  });

  it('a server certificate untrusted by the agent is refused; a client that is not a client certificate is refused at construction', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const onlyOwnRoot = createRotatingAgent(a.manager, 'a-client', { trust: [a.root] });
    cleanups.push(() => onlyOwnRoot.destroy());
    await expect(get(server.port, onlyOwnRoot, 'x')).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|SIGNATURE/),
    });
    expect(() => createRotatingAgent(a.manager, 'a-web')).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/purpose 'client'/) }),
    );
    expect(() => createRotatingAgent(a.manager, 'nope')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_CERTIFICATE' }),
    );
    expect(() => createRotatingAgent(a.manager, 'a-client', { graceMs: -1 })).toThrow(/graceMs/);
  });

  it('a rotation mid-request: the in-flight request finishes on the old identity, its socket then closes, new requests present the new one', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const agent = createRotatingAgent(a.manager, 'a-client', { trust: [a.root, b.root] });
    cleanups.push(() => agent.destroy());
    const first = current(a, 'a-client');
    const slow = get(server.port, agent, first, '/slow?ms=800');
    await waitFor(() => server.pending === 1, 5000, 'the slow request to arrive');
    await get(server.port, agent, first); // a second socket, idle (kept alive) once answered
    expect(server.connections.size).toBe(2);

    await a.manager.renewNow('a-client');
    const second = current(a, 'a-client');
    expect(second).not.toBe(first);
    // The idle socket went at once; the busy one stays until its response is written.
    await waitFor(() => server.connections.size === 1, 5000, 'the idle socket to close');
    expect(agent.stats()).toEqual({ serial: second, generations: 2 });
    await get(server.port, agent, second);
    expect(server.pending).toBe(1); // the slow request is still running

    expect(await slow).toBe('hello from b');
    await waitFor(() => agent.stats().generations === 1, 5000, 'generation 1 to be destroyed');
    // Generation 1's busy socket was closed when freed, not pooled: only generation 2's remains.
    await waitFor(() => server.connections.size === 1, 5000, 'the freed socket to close');
    expect(server.seen.map((s) => [s.path, s.presented])).toEqual([
      ['/slow?ms=800', serialKey(first)],
      ['/', serialKey(first)],
      ['/', serialKey(second)],
    ]);
  });

  it('a retired request that outlives graceMs is cut off, and the generation goes', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const agent = createRotatingAgent(a.manager, 'a-client', { trust: [a.root, b.root], graceMs: 200 });
    cleanups.push(() => agent.destroy());
    const hanging = get(server.port, agent, current(a, 'a-client'), '/slow?ms=60000');
    const outcome = hanging.then(
      () => 'answered',
      (error: { code?: string }) => error.code,
    );
    await waitFor(() => server.pending === 1, 5000, 'the request to arrive');
    await a.manager.renewNow('a-client');
    expect(await outcome).toBe('ECONNRESET');
    await waitFor(() => agent.stats().generations === 1, 5000, 'the retired generation to go');
  });

  it('TLS sessions resume within a generation and never across one', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    // No keep-alive: every request is a new connection, which resumes when it can.
    const agent = createRotatingAgent(a.manager, 'a-client', {
      trust: [a.root, b.root],
      agentOptions: { keepAlive: false },
    });
    cleanups.push(() => agent.destroy());
    const first = current(a, 'a-client');
    await get(server.port, agent, first);
    await get(server.port, agent, first);
    await a.manager.renewNow('a-client');
    const second = current(a, 'a-client');
    await get(server.port, agent, second);
    await get(server.port, agent, second);
    expect(server.seen.map((s) => [s.presented, s.reused])).toEqual([
      [serialKey(first), false],
      [serialKey(first), true], // resumption works here, so its absence below means something
      [serialKey(second), false],
      [serialKey(second), true],
    ]);
  });

  it('a new trust bundle makes a new generation: a server CA added later is accepted', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const trust = mutableTrust([a.root]);
    const agent = createRotatingAgent(a.manager, 'a-client', { trust });
    cleanups.push(() => agent.destroy());
    const serial = current(a, 'a-client');
    await expect(get(server.port, agent, serial)).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|SIGNATURE/),
    });
    trust.set([a.root, b.root]);
    expect(await get(server.port, agent, serial)).toBe('hello from b');
    expect(agent.identity.current().key).toBe(`${serial}/2`);
    expect(agent.identity.current().ca).toHaveLength(2);
  });

  it('close(): in-flight requests finish, new ones are refused with AGENT_CLOSED; close and destroy are idempotent', async () => {
    const [a, b] = await twoServices(cleanups);
    const server = await serveMtls(b, [a.root, b.root], cleanups);
    const agent = createRotatingAgent(a.manager, 'a-client', { trust: [a.root, b.root] });
    cleanups.push(() => agent.destroy());
    const serial = current(a, 'a-client');
    const slow = get(server.port, agent, serial, '/slow?ms=300');
    await waitFor(() => server.pending === 1, 5000, 'the request to arrive');
    const closed = agent.close();
    await expect(get(server.port, agent, serial)).rejects.toMatchObject({ code: 'AGENT_CLOSED' });
    expect(await slow).toBe('hello from b');
    await closed;
    await agent.close();
    expect(agent.stats()).toEqual({ serial: undefined, generations: 0 });
    await waitFor(() => server.connections.size === 0, 5000, 'the connection to close');
    agent.destroy();
    agent.destroy();
    await expect(get(server.port, agent, serial)).rejects.toMatchObject({ code: 'AGENT_CLOSED' });
  });
});
