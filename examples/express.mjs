// An Express app on HTTPS with a certificate from an ACME CA (Let's Encrypt's staging CA unless
// ACME_DIRECTORY_URL says otherwise), validated by HTTP-01 through a small Express app on port 80
// that also redirects everything else to HTTPS; /healthz and /readyz for the load balancer.
//
// Needs express (npm install express). Environment: DOMAIN (required: a name that reaches this host), ACME_DIRECTORY_URL, ACME_CONTACT
// (mailto:…), ACME_CA_FILE (roots for the CA's own HTTPS, for a private or test CA), ACME_ROOT_FILE
// (the root issued chains must end at), PORT (default 443), HTTP_PORT (default 80), HOST,
// CERTKEEPER_DIR (the store, default ./.certkeeper).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createCertificateManager, createHealthHandler, createHttpsServer, FileStore } from 'certkeeper';
import { AcmeIssuer, createHttp01Handler, Http01Solver } from 'certkeeper/acme';
import express from 'express';

const env = process.env;
const domain = env.DOMAIN;
if (!domain) throw new Error('set DOMAIN to the name this server answers for');
const host = env.HOST ?? '0.0.0.0';
const pem = (file) => (file ? readFileSync(file, 'utf8') : undefined);

// The HTTP-01 handler reads answers from the store, so the app creates the store and gives it to both.
const store = new FileStore({ directory: env.CERTKEEPER_DIR ?? '.certkeeper' });
const issuer = new AcmeIssuer({
  directoryUrl: env.ACME_DIRECTORY_URL ?? 'https://acme-staging-v02.api.letsencrypt.org/directory',
  contact: env.ACME_CONTACT ? [env.ACME_CONTACT] : [],
  agreeToTerms: true,
  challenges: [new Http01Solver()],
  ...(env.ACME_CA_FILE ? { ca: pem(env.ACME_CA_FILE) } : {}),
  ...(env.ACME_ROOT_FILE ? { trustAnchors: [pem(env.ACME_ROOT_FILE)] } : {}),
});
const manager = createCertificateManager({ store, issuer, certificates: [{ names: [domain] }] });
manager.on('obtained', (e) => console.log(`obtained ${e.id}: serial ${e.serial} from ${e.issuer}`));
manager.on('renewalFailed', (e) =>
  console.warn(`renewal of ${e.id} failed: ${e.error.code} ${e.error.message}`),
);

// Port 80 first: the CA validates there before the first certificate exists.
const plain = express();
plain.use(createHttp01Handler(store));
plain.use((req, res) => res.redirect(301, `https://${domain}${req.originalUrl}`));
const httpServer = http.createServer(plain);
await new Promise((listening) => httpServer.listen(Number(env.HTTP_PORT ?? 80), host, listening));

await manager.start();
await manager.ready();

const app = express();
app.use(createHealthHandler(manager)); // GET /healthz, /readyz
app.get('/', (req, res) => res.send(`hello from ${req.hostname} over ${req.protocol}\n`));
const server = createHttpsServer(manager, {}, app);
server.listen(Number(env.PORT ?? 443), host, () =>
  console.log(
    `listening on https://${domain}:${server.address().port}/ and http port ${httpServer.address().port}`,
  ),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    for (const s of [server, httpServer]) {
      s.close();
      s.closeAllConnections();
    }
    await manager.stop();
    await store.close(); // ours: we created it
  });
}
