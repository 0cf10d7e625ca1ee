// gRPC in mutual TLS: a server that accepts only clients with a certificate from the embedded CA,
// and a client calling it through createRotatingGrpcClient, which moves new calls to a fresh
// channel whenever the client certificate rotates. Certificates are short-lived and rotate while
// the calls go on; each answer names the client certificate the server verified.
//
// Needs @grpc/grpc-js >= 1.12. Environment: LIFETIME_MS (certificate lifetime, default 60000),
// INTERVAL_MS (between calls, default 500), CERTKEEPER_DIR.
import * as grpc from '@grpc/grpc-js';
import { createCertificateManager, InternalCA, InternalCaTrustSource, TrustStore } from 'certkeeper';
import { createRotatingGrpcClient, grpcServerCredentials } from 'certkeeper/grpc';

// One unary method with JSON messages, so the example needs no .proto file.
const json = {
  serialize: (v) => Buffer.from(JSON.stringify(v)),
  deserialize: (b) => JSON.parse(b.toString()),
};
const GREETER = {
  hello: {
    path: '/example.Greeter/Hello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};
const GreeterClient = grpc.makeGenericClientConstructor(GREETER, 'Greeter');

const ca = new InternalCA({ lifetimeMs: Number(process.env.LIFETIME_MS ?? 60_000) });
const manager = createCertificateManager({
  issuer: ca,
  certificates: [
    { id: 'greeter', names: ['localhost', '127.0.0.1'] },
    { id: 'caller', names: ['caller.svc.internal'], purpose: 'client' },
  ],
});
manager.on('renewed', (e) => console.log(`rotated ${e.id}: serial ${e.serial}`));
await manager.start();
await manager.ready();
const trust = new TrustStore({ sources: [new InternalCaTrustSource(ca)] });
await trust.start();

const server = new grpc.Server();
server.addService(GREETER, {
  hello(call, callback) {
    // grpc-js verified this certificate against the trust bundle during the handshake.
    const peer = call.getAuthContext()?.sslPeerCertificate;
    const name = peer?.subjectaltname?.replace(/^DNS:/, '');
    callback(null, { greeting: `hello ${name}, serial ${peer?.serialNumber.toLowerCase()}` });
  },
});
const credentials = await grpcServerCredentials(manager, { id: 'greeter', trust });
const port = await new Promise((bound, fail) =>
  server.bindAsync('127.0.0.1:0', credentials, (error, p) => (error ? fail(error) : bound(p))),
);
console.log(`server listening on 127.0.0.1:${port}`);

const greeter = await createRotatingGrpcClient(manager, {
  id: 'caller',
  trust,
  address: `localhost:${port}`,
  create: (address, channelCredentials, options) => new GreeterClient(address, channelCredentials, options),
});
let calls = 0;
let failures = 0;
const timer = setInterval(
  () => {
    const n = ++calls;
    greeter.current().hello({}, { deadline: Date.now() + 10_000 }, (error, reply) => {
      if (error) {
        failures++;
        console.log(`call ${n} failed: ${error.code} ${error.details}`);
      } else console.log(`call ${n}: ${reply.greeting}`);
    });
  },
  Number(process.env.INTERVAL_MS ?? 500),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    clearInterval(timer);
    await greeter.close(); // lets the calls in flight finish
    await new Promise((done) => server.tryShutdown(done));
    await trust.stop();
    await manager.stop();
    console.log(`${calls} calls, ${failures} failed`);
  });
}
