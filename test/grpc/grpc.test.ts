// gRPC in mutual TLS with rotating certificates: two services, each a grpc-js server on
// grpcServerCredentials (identity from its manager, client CAs from a trust bundle) and a client
// of the other through createRotatingGrpcClient, call each other continuously while every
// certificate of both is renewed over and over. Each call carries the client serial it was made
// with; the server compares it with the certificate it verified (getAuthContext()).
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ManagedIdentityProvider, TrustBundleCaProvider } from '../../src/grpc/certificate-providers.js';
import { grpcChannelCredentials, grpcServerCredentials } from '../../src/grpc/credentials.js';
import { createRotatingGrpcClient } from '../../src/grpc/rotating-client.js';
import { staticTrust } from '../../src/trust/bundle.js';
import {
  cleanupAfterEach,
  expectHonest,
  load,
  rotateRounds,
  type Service,
  serialKey,
  startService,
  twoServices,
  waitFor,
} from '../mtls/support.js';

const cleanups = cleanupAfterEach();

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
};
const ECHO = {
  echo: {
    path: '/certkeeper.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');
type Echo = InstanceType<typeof EchoClient> & {
  echo(
    req: unknown,
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (e: grpc.ServiceError | null, r: { from: string }) => void,
  ): void;
};

interface Seen {
  claimed: string;
  presented: string | null;
}

async function serveGrpc(s: Service, roots: string[], seen: Seen[], port = 0): Promise<number> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    echo: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const peer = call.getAuthContext()?.sslPeerCertificate;
      seen.push({
        claimed: serialKey(String(call.metadata.get('x-client-serial')[0])),
        presented: peer?.serialNumber ? serialKey(peer.serialNumber) : null,
      });
      // `x-delay-ms` holds the answer back, for calls that must outlive a rotation.
      const delay = Number(call.metadata.get('x-delay-ms')[0] ?? 0);
      const timer = setTimeout(() => callback(null, { from: s.name }), delay);
      call.on('cancelled', () => clearTimeout(timer));
    },
  });
  const credentials = await grpcServerCredentials(s.manager, { id: `${s.name}-web`, trust: roots });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  cleanups.push(() => server.forceShutdown());
  return bound;
}

function call(
  client: Echo,
  serial: string,
  delayMs = 0,
  options: { waitForReady?: boolean; deadlineMs?: number } = {},
): Promise<string> {
  const metadata = new grpc.Metadata();
  metadata.set('x-client-serial', serial);
  if (delayMs > 0) metadata.set('x-delay-ms', String(delayMs));
  if (options.waitForReady) metadata.setOptions({ waitForReady: true });
  const deadline = Date.now() + (options.deadlineMs ?? 5000);
  return new Promise((resolve, reject) =>
    client.echo({}, metadata, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply.from))),
  );
}

describe('gRPC with rotating certificates', () => {
  it('two services calling each other while every certificate rotates: zero failed calls, each call presents the current client certificate', async () => {
    const [a, b] = await twoServices(cleanups);
    const roots = [a.root, b.root];
    const seenByA: Seen[] = [];
    const seenByB: Seen[] = [];
    const portA = await serveGrpc(a, roots, seenByA);
    const portB = await serveGrpc(b, roots, seenByB);
    const options = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };
    const toB = await createRotatingGrpcClient<Echo>(a.manager, {
      id: 'a-client',
      trust: roots,
      address: `127.0.0.1:${portB}`,
      create: (address, credentials, o) => new EchoClient(address, credentials, { ...o, ...options }) as Echo,
    });
    const toA = await createRotatingGrpcClient<Echo>(b.manager, {
      id: 'b-client',
      trust: roots,
      address: `127.0.0.1:${portA}`,
      create: (address, credentials, o) => new EchoClient(address, credentials, { ...o, ...options }) as Echo,
    });
    cleanups.push(
      () => toB.close(),
      () => toA.close(),
    );

    // The claimed serial is read from the manager, not from the client, right before the call.
    const rotation = rotateRounds([a, b], 4, 1000);
    const calls = Promise.all([
      load(rotation, 4, () => call(toB.current(), a.manager.certificate('a-client')!.serial)),
      load(rotation, 4, () => call(toA.current(), b.manager.certificate('b-client')!.serial)),
    ]);
    const [[fromA, fromB], { rotations, retired }] = await Promise.all([calls, rotation]);

    expect(fromA.failures).toEqual([]);
    expect(fromB.failures).toEqual([]);
    expect(fromA.ok + fromB.ok).toBeGreaterThan(100);
    expect(rotations).toBe(16);
    expectHonest(seenByB, retired.get('a-client'));
    expectHonest(seenByA, retired.get('b-client'));
    console.info(
      `[grpc] ${rotations} rotations, ${fromA.ok + fromB.ok} calls, 0 failed, ` +
        `${new Set(seenByB.map((s) => s.presented)).size} client serials seen by b`,
    );
  });

  it('a rotation mid-call: the call started on the old channel finishes after that channel is closed; new calls present the new certificate', async () => {
    const [a, b] = await twoServices(cleanups);
    const seen: Seen[] = [];
    const port = await serveGrpc(b, [a.root, b.root], seen);
    const client = await createRotatingGrpcClient<Echo>(a.manager, {
      id: 'a-client',
      trust: [b.root],
      address: `127.0.0.1:${port}`,
      graceMs: 50, // shorter than the slow call: the old client is closed while it runs
      create: (address, credentials, o) =>
        new EchoClient(address, credentials, { ...o, 'grpc.ssl_target_name_override': 'localhost' }) as Echo,
    });
    cleanups.push(() => client.close());
    const first = a.manager.certificate('a-client')!.serial;
    const slow = call(client.current(), first, 600);
    await waitFor(() => seen.length === 1, 5000, 'the slow call to arrive');
    await a.manager.renewNow('a-client');
    const second = a.manager.certificate('a-client')!.serial;
    expect(client.stats()).toEqual({ serial: second, clients: 2 });
    expect(await call(client.current(), second)).toBe('b');
    await waitFor(() => client.stats().clients === 1, 5000, 'the old client to be closed');
    expect(await slow).toBe('b');
    expect(seen.map((s) => s.presented)).toEqual([serialKey(first), serialKey(second)]);
    client.close();
    client.close();
    expect(() => client.current()).toThrow(expect.objectContaining({ code: 'AGENT_CLOSED' }));
  });

  it('a call waiting for a connection when the certificate rotates is not failed by the retirement of its channel', async () => {
    const [a, b] = await twoServices(cleanups);
    // A port with nothing on it yet: the first call waits (waitForReady) for the server.
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const client = await createRotatingGrpcClient<Echo>(a.manager, {
      id: 'a-client',
      trust: [b.root],
      address: `127.0.0.1:${port}`,
      graceMs: 50,
      create: (address, credentials, o) =>
        new EchoClient(address, credentials, { ...o, 'grpc.ssl_target_name_override': 'localhost' }) as Echo,
    });
    cleanups.push(() => client.close());
    const first = a.manager.certificate('a-client')!.serial;
    const waiting = call(client.current(), first, 0, { waitForReady: true, deadlineMs: 15_000 });
    await a.manager.renewNow('a-client');
    const second = a.manager.certificate('a-client')!.serial;
    await new Promise((r) => setTimeout(r, 300)); // well past graceMs
    expect(client.stats()).toEqual({ serial: second, clients: 2 }); // kept: a call waits on it
    const seen: Seen[] = [];
    await serveGrpc(b, [a.root, b.root], seen, port);
    expect(await waiting).toBe('b');
    expect(await call(client.current(), second)).toBe('b');
    // The waiting call was made before the rotation, with the identity of its time.
    expect(seen.map((s) => s.presented).sort()).toEqual([serialKey(first), serialKey(second)].sort());
    await waitFor(() => client.stats().clients === 1, 5000, 'the old client to be closed once connected');
  }, 30_000);

  it('close() lets a call waiting for a connection finish (the channel closes after it); destroy() fails such a call at once', async () => {
    const [a, b] = await twoServices(cleanups);
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const open = () =>
      createRotatingGrpcClient<Echo>(a.manager, {
        id: 'a-client',
        trust: [b.root],
        address: `127.0.0.1:${port}`,
        create: (address, credentials, o) =>
          new EchoClient(address, credentials, {
            ...o,
            'grpc.ssl_target_name_override': 'localhost',
          }) as Echo,
      });
    const serial = a.manager.certificate('a-client')!.serial;
    const closing = await open();
    const destroying = await open();
    cleanups.push(
      () => closing.destroy(),
      () => destroying.destroy(),
    );
    const waiting = call(closing.current(), serial, 0, { waitForReady: true, deadlineMs: 15_000 });
    const doomed = call(destroying.current(), serial, 0, { waitForReady: true, deadlineMs: 15_000 });
    const closed = closing.close();
    expect(() => closing.current()).toThrow(expect.objectContaining({ code: 'AGENT_CLOSED' }));
    await destroying.destroy();
    await expect(doomed).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(closing.stats().clients).toBe(1); // kept open: a call waits on it
    await serveGrpc(b, [a.root, b.root], [], port);
    expect(await waiting).toBe('b');
    await closed;
    expect(closing.stats()).toEqual({ serial: undefined, clients: 0 });
  }, 30_000);

  it('grpcServerCredentials: new connections get the renewed server certificate, from the first connection on', async () => {
    const [a, b] = await twoServices(cleanups);
    const port = await serveGrpc(b, [a.root, b.root], []);
    const clientCredentials = a.manager.credentials('a-client')!;
    // What the server presents to a new TLS connection (ALPN h2, as a gRPC client).
    const presented = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          ALPNProtocols: ['h2'],
          ca: [b.root],
          key: clientCredentials.key.toPem(),
          cert: clientCredentials.chainPem,
        });
        socket.once('secureConnect', () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.once('error', reject);
      });
    expect(serialKey(await presented())).toBe(serialKey(b.manager.certificate('b-web')!.serial));
    const before = b.manager.certificate('b-web')!.serial;
    await b.manager.renewNow('b-web');
    const after = b.manager.certificate('b-web')!.serial;
    expect(after).not.toBe(before);
    expect(serialKey(await presented())).toBe(serialKey(after));
  });

  it('channel credentials on providers: a plain client verifies the rotating server and presents its managed identity', async () => {
    const [a, b] = await twoServices(cleanups);
    const seen: Seen[] = [];
    const port = await serveGrpc(b, [a.root, b.root], seen);
    const credentials = await grpcChannelCredentials(a.manager, { id: 'a-client', trust: [b.root] });
    const client = new EchoClient(`127.0.0.1:${port}`, credentials, {
      'grpc.ssl_target_name_override': 'localhost',
    }) as Echo;
    cleanups.push(() => client.close());
    const serial = a.manager.certificate('a-client')!.serial;
    expect(await call(client, serial)).toBe('b');
    await b.manager.renewNow('b-web'); // the server rotates: the open connection keeps working
    expect(await call(client, serial)).toBe('b');
    expect(seen.every((s) => s.presented === serialKey(serial))).toBe(true);

    // A client whose trust does not include the server's CA is refused.
    const wrong = await grpcChannelCredentials(a.manager, { id: 'a-client', trust: [a.root] });
    const stranger = new EchoClient(`127.0.0.1:${port}`, wrong, {
      'grpc.ssl_target_name_override': 'localhost',
    }) as Echo;
    cleanups.push(() => stranger.close());
    await expect(call(stranger, serial)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('providers publish complete updates only, never null, and follow rotations', async () => {
    const a = await startService('a');
    cleanups.push(() => a.manager.stop());
    const identity = new ManagedIdentityProvider(a.manager, 'a-web');
    const updates: unknown[] = [];
    const listener = (u: unknown) => updates.push(u);
    identity.addIdentityCertificateListener(listener);
    await a.manager.renewNow('a-web');
    identity.removeIdentityCertificateListener(listener);
    await a.manager.renewNow('a-web'); // no longer listening
    expect(updates).toHaveLength(2);
    for (const u of updates) {
      expect(u).not.toBeNull();
      expect(String((u as { certificate: Buffer }).certificate)).toContain('BEGIN CERTIFICATE');
      expect(String((u as { privateKey: Buffer }).privateKey)).toContain('PRIVATE KEY');
    }
    const ca = new TrustBundleCaProvider(staticTrust([a.root]));
    const caUpdates: unknown[] = [];
    ca.addCaCertificateListener((u) => caUpdates.push(u));
    expect(caUpdates).toEqual([]); // never inside add…Listener (see deliverLater)
    await Promise.resolve();
    expect(caUpdates).toEqual([
      { caCertificate: Buffer.from(staticTrust([a.root]).current().certificates.join('')) },
    ]);
  });
});
