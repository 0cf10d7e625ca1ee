// Client-certificate verification against a TrustStore, with real handshakes: who is refused
// (expired, untrusted CA, removed by a root rotation), what peerIdentity reports, a trust change
// reaching the default and SNI contexts, and a full internal-CA root rotation under continuous
// mutual-TLS traffic with zero failed calls, after which the server never sees the old client
// certificate again, even when the client tries to resume a session from before.
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createHttp2SecureServer,
  createHttpsServer,
  createTlsServer,
} from '../../src/server/create-server.js';
import { type PeerIdentity, peerIdentity } from '../../src/server/peer-identity.js';
import { managerChains, rotateCa } from '../../src/trust/ca-rotation.js';
import { InternalCaTrustSource } from '../../src/trust/internal-ca-source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { makeIntermediate, makeLeaf, makePki } from '../support/pki.js';
import { MutableSource } from '../trust/support.js';
import { cleanup, type Fixture, onCleanup, serve, startManager } from './harness.js';

afterEach(cleanup);

const CERTIFICATES = [
  { id: 'web', names: ['localhost', '127.0.0.1'] },
  { id: 'other', names: ['other.test'] },
  { id: 'svc', names: ['svc-client'], purpose: 'client' as const },
];

interface Credentials {
  key: string;
  cert: string;
}

interface Answer {
  status: number;
  body: string;
  session?: Buffer;
  reused: boolean;
}

/** One HTTPS call on a fresh connection (no agent); `session` asks for resumption. */
function call(
  port: number,
  ca: string | string[],
  credentials: Partial<Credentials>,
  options: { session?: Buffer; servername?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let reused = false;
    const request = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: options.servername ?? 'localhost',
        ca,
        agent: false,
        ...(options.session ? { session: options.session } : {}),
        ...credentials,
      } as https.RequestOptions,
      (response) => {
        let body = '';
        response.on('data', (chunk) => {
          body += chunk;
        });
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body, session, reused }));
      },
    );
    request.on('socket', (socket: tls.TLSSocket) => {
      socket.on('session', (s: Buffer) => {
        session = s;
      });
      socket.once('secureConnect', () => {
        reused = socket.isSessionReused();
      });
    });
    request.setTimeout(5000, () => request.destroy(new Error('timeout')));
    request.once('error', reject);
  });
}

function clientOf(f: Fixture): Credentials {
  const c = f.manager.credentials('svc')!;
  return { key: c.key.toPem(), cert: c.chainPem };
}

/** What the server saw per request: the verified identity (null when not authorized). */
function recordingHandler(seen: (PeerIdentity | null)[]) {
  return (req: { socket: unknown }, res: { end(body: string): void }) => {
    const identity = peerIdentity(req as { socket: tls.TLSSocket });
    seen.push(identity);
    res.end(identity ? identity.fingerprint256 : 'anonymous');
  };
}

describe('clientAuth against a trust store', () => {
  it('accepts a trusted client (peerIdentity), refuses expired, untrusted-CA and missing certificates', async () => {
    const f = await startManager(CERTIFICATES);
    const clients = await makePki({ names: ['svc.test', '10.0.0.7'], extKeyUsage: ['clientAuth'] });
    const expired = await makeLeaf(clients.intermediate, {
      names: ['old.test'],
      extKeyUsage: ['clientAuth'],
      notBefore: new Date(Date.now() - 3 * 3_600_000),
      notAfter: new Date(Date.now() - 3_600_000),
    });
    const stranger = await makePki({ names: ['svc.test'], extKeyUsage: ['clientAuth'] });
    const trust = new TrustStore({ sources: [new MutableSource('clients', [clients.rootPem])] });
    await trust.start();
    const seen: (PeerIdentity | null)[] = [];
    const server = createHttpsServer(f.manager, {}, recordingHandler(seen), { clientAuth: { trust } });
    const port = await serve(server);

    const ok = await call(port, f.root, { key: clients.keyPem, cert: clients.chainPem });
    expect(ok.status).toBe(200);
    const identity = seen.at(-1)!;
    expect(identity).toMatchObject({
      commonName: 'svc.test',
      sans: { dns: ['svc.test'], ip: ['10.0.0.7'], uri: [], email: [] },
      fingerprint256: clients.leaf.certificate.info.fingerprint256,
      serial: clients.leaf.certificate.info.serialNumber,
    });
    expect(identity.notAfter.getTime()).toBe(clients.leaf.certificate.info.notAfter.getTime());
    expect(identity.issuer).toContain('Test Intermediate');

    const count = seen.length;
    await expect(
      call(port, f.root, {
        key: expired.key.toPem(),
        cert: expired.certificate.pem + clients.intermediate.certificate.pem,
      }),
    ).rejects.toThrow();
    await expect(call(port, f.root, { key: stranger.keyPem, cert: stranger.chainPem })).rejects.toThrow();
    await expect(call(port, f.root, {})).rejects.toThrow();
    expect(seen.length).toBe(count); // no refused client reached the handler
    // The default session lifetime is bounded when clients are verified.
    expect((server as unknown as { sessionTimeout: number }).sessionTimeout).toBe(300);
  });

  it('required: false lets anonymous clients through with a null identity', async () => {
    const f = await startManager(CERTIFICATES);
    const clients = await makePki({ names: ['svc.test'], extKeyUsage: ['clientAuth'] });
    const stranger = await makePki({ names: ['svc.test'], extKeyUsage: ['clientAuth'] });
    const trust = new TrustStore({ sources: [new MutableSource('clients', [clients.rootPem])] });
    await trust.start();
    const seen: (PeerIdentity | null)[] = [];
    const server = createHttpsServer(f.manager, {}, recordingHandler(seen), {
      clientAuth: { trust, required: false },
    });
    const port = await serve(server);
    expect((await call(port, f.root, {})).body).toBe('anonymous');
    // A certificate that does not verify is not an identity either.
    expect((await call(port, f.root, { key: stranger.keyPem, cert: stranger.chainPem })).body).toBe(
      'anonymous',
    );
    expect((await call(port, f.root, { key: clients.keyPem, cert: clients.chainPem })).body).toBe(
      clients.leaf.certificate.info.fingerprint256,
    );
  });

  it('a trust change reaches the default and SNI contexts, and old sessions do not resume past it', async () => {
    const f = await startManager(CERTIFICATES);
    const first = await makePki({ names: ['a.test'], extKeyUsage: ['clientAuth'] });
    const second = await makePki({ names: ['b.test'], extKeyUsage: ['clientAuth'] });
    const source = new MutableSource('clients', [first.rootPem]);
    const trust = new TrustStore({ sources: [source] });
    await trust.start();
    onCleanup(() => trust.stop());
    const seen: (PeerIdentity | null)[] = [];
    const server = createHttpsServer(f.manager, {}, recordingHandler(seen), { clientAuth: { trust } });
    const port = await serve(server);
    const firstClient = { key: first.keyPem, cert: first.chainPem };
    const secondClient = { key: second.keyPem, cert: second.chainPem };

    // Warm both the default context and the SNI context of "other.test".
    const before = await call(port, f.root, firstClient);
    expect(before.session).toBeDefined();
    const resumed = await call(port, f.root, firstClient, { session: before.session });
    expect(resumed.reused).toBe(true); // resumption works while the bundle is unchanged
    await call(port, f.root, firstClient, { servername: 'other.test' });
    await expect(call(port, f.root, secondClient)).rejects.toThrow();

    source.pems = [second.rootPem];
    await trust.refresh();
    for (const servername of ['localhost', 'other.test']) {
      expect((await call(port, f.root, secondClient, { servername })).body).toBe(
        second.leaf.certificate.info.fingerprint256,
      );
      await expect(call(port, f.root, firstClient, { servername })).rejects.toThrow();
    }
    // A session from before the change is not resumed: the old identity would skip verification.
    await expect(call(port, f.root, firstClient, { session: before.session })).rejects.toThrow();
    const fresh = await call(port, f.root, secondClient, { session: before.session });
    expect(fresh.reused).toBe(false);
    expect(fresh.body).toBe(second.leaf.certificate.info.fingerprint256);
  });

  it('attach on a tls.Server created by certkeeper verifies with the bundle too', async () => {
    const f = await startManager(CERTIFICATES);
    const clients = await makePki({ names: ['svc.test'], extKeyUsage: ['clientAuth'] });
    const sub = await makeIntermediate(clients.root, 'Second Intermediate');
    const subLeaf = await makeLeaf(sub, { names: ['sub.test'], extKeyUsage: ['clientAuth'] });
    const trust = new TrustStore({ sources: [new MutableSource('clients', [clients.rootPem])] });
    await trust.start();
    const server = createTlsServer(
      f.manager,
      {},
      (socket) => socket.end(peerIdentity(socket)?.commonName ?? 'anonymous'),
      { clientAuth: { trust, sessionTimeout: 60 } },
    );
    const port = await serve(server);
    const { connectOpen } = await import('../support/tls.js');
    const socket = await connectOpen(port, {
      servername: 'localhost',
      ca: f.root,
      rejectUnauthorized: true,
      key: subLeaf.key.toPem(),
      cert: subLeaf.certificate.pem + sub.certificate.pem,
    });
    const body = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (c) => {
        text += c;
      });
      socket.once('end', () => resolve(text));
    });
    expect(body).toBe('sub.test');
    expect((server as unknown as { sessionTimeout: number }).sessionTimeout).toBe(60);
  });
});

describe('clientAuth on http2', () => {
  it('verifies the client and peerIdentity reads it from a compat request', async () => {
    const f = await startManager(CERTIFICATES);
    const clients = await makePki({ names: ['h2.test'], extKeyUsage: ['clientAuth'] });
    const trust = new TrustStore({ sources: [new MutableSource('clients', [clients.rootPem])] });
    await trust.start();
    const server = createHttp2SecureServer(
      f.manager,
      {},
      (req, res) => res.end(peerIdentity(req)?.commonName ?? 'anonymous'),
      { clientAuth: { trust } },
    );
    const port = await serve(server as unknown as tls.Server);
    const session = http2.connect(`https://localhost:${port}`, {
      ca: f.root,
      key: clients.keyPem,
      cert: clients.chainPem,
      host: '127.0.0.1',
    });
    onCleanup(() => session.close());
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      let text = '';
      stream.on('data', (c) => {
        text += c;
      });
      stream.once('end', () => resolve(text));
      stream.once('error', reject);
    });
    expect(body).toBe('h2.test');
  });
});

describe('internal CA root rotation under mutual TLS', () => {
  it('zero failed calls through introduce, activate + renewAll, finish; the old client certificate is never seen again', async () => {
    const f = await startManager([
      { id: 'web', names: ['localhost', '127.0.0.1'] },
      { id: 'svc', names: ['svc-client'], purpose: 'client' as const },
    ]);
    const ca = f.issuer.ca;
    const trust = new TrustStore({
      sources: [new InternalCaTrustSource(ca, { store: f.store })],
      protect: managerChains(f.manager),
    });
    await trust.start();
    onCleanup(() => trust.stop());
    const oldRoot = trust.current().fingerprints[0]!;
    const served: { fingerprint: string | null; reused: boolean }[] = [];
    const server = createHttpsServer(
      f.manager,
      {},
      (req, res) => {
        const socket = req.socket as tls.TLSSocket;
        served.push({
          fingerprint: peerIdentity(req)?.fingerprint256 ?? null,
          reused: socket.isSessionReused(),
        });
        res.end('ok');
      },
      { clientAuth: { trust } },
    );
    const port = await serve(server);

    const oldClient = clientOf(f);
    const oldFingerprint = f.manager.certificate('svc')!.fingerprint256;
    const oldSession = (await call(port, trust.current().certificates as string[], oldClient)).session;
    expect(oldSession).toBeDefined();

    // Continuous traffic: each call uses the client's current credentials and the current
    // bundle, and tries to resume the last session it got (as a pooling client would).
    let running = true;
    let calls = 0;
    const failures: string[] = [];
    const loop = (async () => {
      let session: Buffer | undefined;
      while (running && calls < 5000) {
        calls++;
        try {
          const answer = await call(port, trust.current().certificates as string[], clientOf(f), { session });
          if (answer.status !== 200) failures.push(`status ${answer.status}`);
          session = answer.session ?? session;
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    })();

    const phases: string[] = [];
    const waitForCalls = async (n: number) => {
      const target = calls + n;
      for (let i = 0; i < 500 && calls < target; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await waitForCalls(5);
    const status = await rotateCa({
      ca,
      manager: f.manager,
      trust,
      store: f.store,
      settle: async (phase) => {
        phases.push(phase);
        await waitForCalls(10);
      },
    });
    // The call in flight when rotateCa returned may have resumed a session from before the
    // finish: it is counted once the next call has started (calls run one after the other).
    await waitForCalls(1);
    const rotatedAt = served.length;
    await waitForCalls(20);
    running = false;
    await loop;

    expect(phases).toEqual(['introduced', 'activated']);
    expect(status.phase).toBe('none');
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(30);
    expect(trust.current().fingerprints).toEqual([status.current]);
    expect(status.current).not.toBe(oldRoot);

    // Server side, per request after the rotation: only the new client certificate.
    const newFingerprint = f.manager.certificate('svc')!.fingerprint256;
    expect(newFingerprint).not.toBe(oldFingerprint);
    const after = served.slice(rotatedAt);
    expect(after.length).toBeGreaterThan(10);
    expect(after.every((s) => s.fingerprint === newFingerprint)).toBe(true);
    expect(after.some((s) => s.reused)).toBe(true); // resumption still works within one generation

    // The old client certificate is refused (its root is gone), also when it offers its old session.
    const count = served.length;
    await expect(call(port, trust.current().certificates as string[], oldClient)).rejects.toThrow();
    await expect(
      call(port, trust.current().certificates as string[], oldClient, { session: oldSession }),
    ).rejects.toThrow();
    expect(served.length).toBe(count);
    expect(served.every((s) => s.fingerprint !== null)).toBe(true);
  });

  it('finishing before the certificates are re-issued is refused by the guard; nothing is removed', async () => {
    const f = await startManager([{ id: 'web', names: ['localhost', '127.0.0.1'] }]);
    const ca = f.issuer.ca;
    const source = new InternalCaTrustSource(ca, { store: f.store });
    const trust = new TrustStore({ sources: [source], protect: managerChains(f.manager) });
    await trust.start();
    const begun = await ca.beginRootRotation(f.store);
    expect(begun.phase).toBe('introduced');
    await trust.refresh();
    const activated = await ca.activateNextRoot(f.store);
    expect(activated.phase).toBe('activated');
    await trust.refresh();
    expect(trust.current().fingerprints).toHaveLength(2);

    const refused: string[] = [];
    trust.on('refused', (e) => refused.push(e.error.code));
    await expect(
      ca.finishRootRotation({
        store: f.store,
        guard: (remaining) => trust.assertUpdate(remaining, source.name),
      }),
    ).rejects.toMatchObject({ code: 'TRUST_UPDATE_REFUSED' });
    expect(refused).toEqual(['TRUST_UPDATE_REFUSED']);
    expect((await ca.rootRotation(f.store)).phase).toBe('activated');
    expect(await ca.publishedRoots(f.store)).toHaveLength(2);

    // After re-issuing, the same step passes.
    await f.manager.renewAll();
    const done = await ca.finishRootRotation({
      store: f.store,
      guard: (remaining) => trust.assertUpdate(remaining, source.name),
    });
    expect(done.phase).toBe('none');
    await trust.refresh();
    expect(trust.current().fingerprints).toEqual([done.current]);
  });
});
