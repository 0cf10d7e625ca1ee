// Outbound mTLS with certificates that rotate: two services call each other continuously through
// a RotatingAgent (https) and a RotatingDispatcher (undici fetch) while every certificate of both
// is renewed over and over. Each request carries the client serial the agent chose for it; the
// server compares it with the certificate it actually verified on that request.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { fetch as undiciFetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Http01Solver } from '../../src/challenges/http-01.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createRotatingAgent } from '../../src/mtls/rotating-agent.js';
import { createRotatingDispatcher } from '../../src/mtls/rotating-dispatcher.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { rotateWhile, type Service, serialKey, silent, startService } from './support.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Seen {
  claimed: string;
  presented: string;
}

/** Service `s`'s mTLS server, accepting clients of either CA; records what each request presented. */
async function serveMtls(s: Service, roots: string[], seen: Seen[]): Promise<number> {
  const server = createHttpsServer(
    s.manager,
    { requestCert: true, rejectUnauthorized: true, ca: roots },
    (req, res) => {
      const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
      seen.push({
        claimed: serialKey(String(req.headers['x-client-serial'])),
        presented: serialKey(peer.serialNumber),
      });
      res.end(`hello from ${s.name}`);
    },
    { certificates: [`${s.name}-web`] },
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections?.();
    return new Promise((r) => server.close(r));
  });
  return (server.address() as AddressInfo).port;
}

function get(port: number, agent: https.Agent, serial: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: 'localhost', agent, headers: { 'x-client-serial': serial } },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Calls `call` from `workers` loops until `ms` have passed; counts successes and failures. */
async function load(ms: number, workers: number, call: () => Promise<unknown>) {
  const end = Date.now() + ms;
  let ok = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < end) {
        try {
          await call();
          ok++;
        } catch (error) {
          failures.push(String(error));
        }
      }
    }),
  );
  return { ok, failures };
}

function expectHonest(seen: Seen[], retired: Map<string, Set<string>>, id: string) {
  expect(seen.length).toBeGreaterThan(0);
  // Every request presented exactly the certificate that was current when it was made...
  for (const s of seen) expect(s.presented).toBe(s.claimed);
  // ...and the server saw several generations of the client (it really rotated).
  expect(new Set(seen.map((s) => s.presented)).size).toBeGreaterThan(2);
  expect(retired.get(id)!.size).toBeGreaterThan(2);
}

describe('RotatingAgent (https)', () => {
  it('two services calling each other while every certificate rotates: zero failed calls, never an old client certificate', async () => {
    const [a, b] = await Promise.all([startService('a'), startService('b')]);
    cleanups.push(
      () => a.manager.stop(),
      () => b.manager.stop(),
    );
    const roots = [a.root, b.root];
    const seenByA: Seen[] = [];
    const seenByB: Seen[] = [];
    const portA = await serveMtls(a, roots, seenByA);
    const portB = await serveMtls(b, roots, seenByB);
    const agentA = createRotatingAgent(a.manager, 'a-client', { trust: roots });
    const agentB = createRotatingAgent(b.manager, 'b-client', { trust: roots });
    cleanups.push(
      () => agentA.destroy(),
      () => agentB.destroy(),
    );

    const calls = Promise.all([
      load(3000, 4, () => get(portB, agentA, agentA.identity.current().serial)),
      load(3000, 4, () => get(portA, agentB, agentB.identity.current().serial)),
    ]);
    const rotation = rotateWhile([a, b], 150, calls);
    const [[fromA, fromB], { rotations, retired }] = await Promise.all([calls, rotation]);

    expect(fromA.failures).toEqual([]);
    expect(fromB.failures).toEqual([]);
    expect(fromA.ok + fromB.ok).toBeGreaterThan(100);
    expect(rotations).toBeGreaterThan(8);
    expectHonest(seenByB, retired, 'a-client');
    expectHonest(seenByA, retired, 'b-client');
    // Retired generations are closed: at most the current one and those still draining remain.
    await new Promise((r) => setTimeout(r, 300));
    expect(agentA.stats().generations).toBe(1);
  });

  it('a server certificate untrusted by the agent is refused; a client that is not a client certificate is refused at construction', async () => {
    const [a, b] = await Promise.all([startService('a'), startService('b')]);
    cleanups.push(
      () => a.manager.stop(),
      () => b.manager.stop(),
    );
    const port = await serveMtls(b, [a.root, b.root], []);
    const onlyOwnRoot = createRotatingAgent(a.manager, 'a-client', { trust: [a.root] });
    cleanups.push(() => onlyOwnRoot.destroy());
    await expect(get(port, onlyOwnRoot, 'x')).rejects.toThrow(/certificate/i);
    expect(() => createRotatingAgent(a.manager, 'a-web')).toThrow(/purpose 'client'/);
    expect(() => createRotatingAgent(a.manager, 'nope')).toThrow(/no managed certificate/);
  });

  it('idle keep-alive sockets of a retired generation are closed; its in-flight request finishes', async () => {
    const [a, b] = await Promise.all([startService('a'), startService('b')]);
    cleanups.push(
      () => a.manager.stop(),
      () => b.manager.stop(),
    );
    const seen: Seen[] = [];
    const port = await serveMtls(b, [a.root, b.root], seen);
    const agent = createRotatingAgent(a.manager, 'a-client', { trust: [a.root, b.root] });
    cleanups.push(() => agent.destroy());
    const first = agent.identity.current().serial;
    await get(port, agent, first);
    await a.manager.renewNow('a-client'); // the idle socket of generation 1 must go now
    expect(agent.stats()).toEqual({ serial: a.manager.certificate('a-client')!.serial, generations: 1 });
    await get(port, agent, agent.identity.current().serial);
    expect(seen.map((s) => s.presented)).toEqual([
      serialKey(first),
      serialKey(a.manager.certificate('a-client')!.serial),
    ]);
  });
});

describe('RotatingDispatcher (undici)', () => {
  it('fetch through the dispatcher while both services rotate: zero failed calls, never an old client certificate', async () => {
    const [a, b] = await Promise.all([startService('a'), startService('b')]);
    cleanups.push(
      () => a.manager.stop(),
      () => b.manager.stop(),
    );
    const roots = [a.root, b.root];
    const seen: Seen[] = [];
    const port = await serveMtls(b, roots, seen);
    const dispatcher = await createRotatingDispatcher(a.manager, 'a-client', { trust: roots });
    cleanups.push(() => dispatcher.close());
    const call = async () => {
      const res = await undiciFetch(`https://localhost:${port}/`, {
        dispatcher,
        headers: { 'x-client-serial': dispatcher.identity.current().serial },
      });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      await res.text();
    };
    const calls = load(3000, 6, call);
    const rotation = rotateWhile([a, b], 150, calls);
    const [result, { retired }] = await Promise.all([calls, rotation]);
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(50);
    expectHonest(seen, retired, 'a-client');
  });

  it("Node's global fetch accepts the dispatcher", async () => {
    const [a, b] = await Promise.all([startService('a'), startService('b')]);
    cleanups.push(
      () => a.manager.stop(),
      () => b.manager.stop(),
    );
    const seen: Seen[] = [];
    const port = await serveMtls(b, [a.root, b.root], seen);
    const dispatcher = await createRotatingDispatcher(a.manager, 'a-client', { trust: [a.root, b.root] });
    cleanups.push(() => dispatcher.close());
    const serial = a.manager.certificate('a-client')!.serial;
    const res = await fetch(`https://localhost:${port}/`, {
      dispatcher,
      headers: { 'x-client-serial': serial },
    } as unknown as RequestInit);
    expect(await res.text()).toBe('hello from b');
    expect(seen).toEqual([{ claimed: serialKey(serial), presented: serialKey(serial) }]);
  });
});

describe('client identities', () => {
  it('an ACME issuer cannot be configured for a client certificate', () => {
    const issuer = new AcmeIssuer({
      directoryUrl: 'https://127.0.0.1:1/dir',
      agreeToTerms: true,
      challenges: [new Http01Solver()],
    });
    expect(() =>
      createCertificateManager({
        store: new MemoryStore(),
        issuer,
        certificates: [{ id: 'svc', names: ['svc.test'], purpose: 'client' }],
        logger: silent,
      }),
    ).toThrow(/certificates\[0\]\.purpose/);
  });
});
