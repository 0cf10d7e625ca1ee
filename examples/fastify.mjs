// A Fastify app on HTTPS with a certificate from an ACME CA (Let's Encrypt's staging CA unless
// ACME_DIRECTORY_URL says otherwise): a small plugin attaches the manager to Fastify's server when
// it is ready and detaches it on close, and a second Fastify instance on port 80 answers HTTP-01
// (a route that hands the raw request to certkeeper with reply.hijack()) and redirects the rest.
//
// Needs fastify (npm install fastify). Environment: as examples/express.mjs (DOMAIN required; ACME_DIRECTORY_URL, ACME_CONTACT,
// ACME_CA_FILE, ACME_ROOT_FILE, PORT, HTTP_PORT, HOST, CERTKEEPER_DIR).
import { readFileSync } from 'node:fs';
import { createCertificateManager, createHealthHandler, FileStore } from 'certkeeper';
import { AcmeIssuer, createHttp01Handler, Http01Solver } from 'certkeeper/acme';
import Fastify from 'fastify';

const env = process.env;
const domain = env.DOMAIN;
if (!domain) throw new Error('set DOMAIN to the name this server answers for');
const host = env.HOST ?? '0.0.0.0';
const pem = (file) => (file ? readFileSync(file, 'utf8') : undefined);

/** The manager serves Fastify's own https server: attached when the app is ready, detached on close. */
function certkeeperTls(fastify, { manager }, done) {
  fastify.addHook('onReady', async () => {
    manager.attach(fastify.server);
  });
  fastify.addHook('onClose', async () => {
    manager.detach(fastify.server);
    console.log('detached from the https server');
  });
  done();
}
certkeeperTls[Symbol.for('skip-override')] = true; // hooks on the app itself, as fastify-plugin does

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

// Port 80: HTTP-01 answers from the store, everything else to HTTPS.
const http01 = createHttp01Handler(store);
const plain = Fastify();
plain.get('/.well-known/acme-challenge/:token', (request, reply) => {
  reply.hijack(); // certkeeper writes the raw response itself
  http01(request.raw, reply.raw);
});
plain.all('/*', (request, reply) => reply.redirect(`https://${domain}${request.url}`, 301));
await plain.listen({ port: Number(env.HTTP_PORT ?? 80), host });

await manager.start();
await manager.ready();

const app = Fastify({ https: {} }); // no key or certificate: the manager provides them
await app.register(certkeeperTls, { manager });
await app.register(createHealthHandler(manager).fastify); // GET /healthz, /readyz
app.get('/', async (request) => `hello from ${request.hostname} over ${request.protocol}\n`);
await app.listen({ port: Number(env.PORT ?? 443), host });
console.log(
  `listening on https://${domain}:${app.server.address().port}/ and http port ${plain.server.address().port}`,
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await Promise.all([app.close(), plain.close()]);
    await manager.stop();
    await store.close();
  });
}
