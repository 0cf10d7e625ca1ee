// Mutual TLS with fetch: an HTTPS server that accepts only clients holding a certificate from the
// embedded CA, and a client calling it with undici's fetch through a dispatcher that always
// presents the current client certificate. Certificates are short-lived and rotate while the
// calls go on; each answer names the client certificate the server verified.
//
// Needs undici (npm install undici). Environment: LIFETIME_MS (certificate lifetime, default
// 60000: a rotation about every 40 s), INTERVAL_MS (between calls, default 500), CERTKEEPER_DIR.
import {
  createCertificateManager,
  createHttpsServer,
  InternalCA,
  InternalCaTrustSource,
  peerIdentity,
  TrustStore,
} from 'certkeeper';
import { createRotatingDispatcher } from 'certkeeper/undici';
import { fetch } from 'undici';

const ca = new InternalCA({ lifetimeMs: Number(process.env.LIFETIME_MS ?? 60_000) });
const manager = createCertificateManager({
  issuer: ca,
  certificates: [
    { id: 'web', names: ['localhost', '127.0.0.1'] },
    { id: 'caller', names: ['caller.svc.internal'], purpose: 'client' }, // EKU clientAuth
  ],
});
manager.on('swapped', (e) => e.previousSerial && console.log(`rotated ${e.id}: serial ${e.serial}`));
await manager.start();
await manager.ready();

// Which CAs both sides accept: the embedded CA's roots (both of them during a root rotation).
const trust = new TrustStore({ sources: [new InternalCaTrustSource(ca)] });
await trust.start();

const server = createHttpsServer(
  manager,
  {},
  (req, res) => {
    const peer = peerIdentity(req); // verified: clients without a trusted certificate never get here
    res.end(`hello ${peer.sans.dns[0]}, serial ${peer.serial}\n`);
  },
  { clientAuth: { trust } },
);
await new Promise((listening) => server.listen(0, '127.0.0.1', listening));
const url = `https://localhost:${server.address().port}/`;
console.log(`server listening on ${url}`);

const dispatcher = await createRotatingDispatcher(manager, 'caller', { trust });
let calls = 0;
let failures = 0;
const timer = setInterval(
  async () => {
    const n = ++calls;
    try {
      const res = await fetch(url, { dispatcher });
      console.log(`call ${n}: ${res.status} ${(await res.text()).trim()}`);
    } catch (error) {
      failures++;
      console.log(`call ${n} failed: ${error.cause?.code ?? error.message}`);
    }
  },
  Number(process.env.INTERVAL_MS ?? 500),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    clearInterval(timer);
    await dispatcher.close();
    server.close();
    server.closeAllConnections();
    await trust.stop();
    await manager.stop();
    console.log(`${calls} calls, ${failures} failed`);
  });
}
