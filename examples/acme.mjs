// An HTTPS server with a certificate from an ACME CA (Let's Encrypt's staging CA unless
// ACME_DIRECTORY_URL says otherwise), validated by the challenge type CHALLENGE names:
//   tls-alpn-01  on the HTTPS port itself: nothing else to open (the default)
//   http-01      on a small port-80 listener that also redirects everything else to HTTPS
//   dns-01       through a DNS provider, which also gets a wildcard (*.DOMAIN); here Pebble's
//                challtestsrv (CHALLTESTSRV_URL); for a real zone, Rfc2136Provider or your own
//                DnsProvider (docs/dns-providers.md)
//
// Environment: DOMAIN (required), CHALLENGE, ACME_DIRECTORY_URL, ACME_CONTACT, ACME_CA_FILE (roots
// for the CA's own HTTPS), ACME_ROOT_FILE (the root issued chains must end at), PORT (default 443;
// TLS-ALPN-01 is validated on 443), HTTP_PORT (default 80), HOST, CERTKEEPER_DIR,
// CHALLTESTSRV_URL and DNS_RESOLVERS (host:port, comma-separated) for dns-01.
import { readFileSync } from 'node:fs';
import { createCertificateManager, createHttpsServer, FileStore } from 'certkeeper';
import {
  AcmeIssuer,
  ChallTestSrvProvider,
  Dns01Solver,
  Http01Solver,
  startHttp01Server,
  TlsAlpn01Solver,
} from 'certkeeper/acme';

const env = process.env;
const domain = env.DOMAIN;
if (!domain) throw new Error('set DOMAIN to the name this server answers for');
const challenge = env.CHALLENGE ?? 'tls-alpn-01';
const host = env.HOST ?? '0.0.0.0';
const pem = (file) => (file ? readFileSync(file, 'utf8') : undefined);

const solvers = {
  'tls-alpn-01': () => new TlsAlpn01Solver(),
  'http-01': () => new Http01Solver(),
  'dns-01': () =>
    new Dns01Solver({
      provider: new ChallTestSrvProvider(env.CHALLTESTSRV_URL ?? 'http://127.0.0.1:8055'),
      ...(env.DNS_RESOLVERS ? { resolvers: env.DNS_RESOLVERS.split(',') } : {}),
    }),
};
if (!solvers[challenge]) throw new Error(`CHALLENGE must be one of ${Object.keys(solvers).join(', ')}`);

const store = new FileStore({ directory: env.CERTKEEPER_DIR ?? '.certkeeper' });
const issuer = new AcmeIssuer({
  directoryUrl: env.ACME_DIRECTORY_URL ?? 'https://acme-staging-v02.api.letsencrypt.org/directory',
  contact: env.ACME_CONTACT ? [env.ACME_CONTACT] : [],
  agreeToTerms: true,
  challenges: [solvers[challenge]()],
  ...(env.ACME_CA_FILE ? { ca: pem(env.ACME_CA_FILE) } : {}),
  ...(env.ACME_ROOT_FILE ? { trustAnchors: [pem(env.ACME_ROOT_FILE)] } : {}),
});
const names = challenge === 'dns-01' ? [domain, `*.${domain}`] : [domain];
const manager = createCertificateManager({ store, issuer, certificates: [{ id: 'site', names }] });
manager.on('obtained', (e) => console.log(`obtained ${e.id} by ${challenge}: serial ${e.serial}`));
manager.on('renewalFailed', (e) =>
  console.warn(`attempt for ${e.id} failed: ${e.error.code} ${e.error.message}`),
);

// The server listens before the first certificate exists: with TLS-ALPN-01 it is what answers
// the CA. Ordinary handshakes before that fail; ready() says when the certificate is served.
const server = createHttpsServer(manager, {}, (req, res) => res.end(`hello from ${req.headers.host}\n`));
await new Promise((listening) => server.listen(Number(env.PORT ?? 443), host, listening));
const http01 =
  challenge === 'http-01'
    ? await startHttp01Server({
        store,
        port: Number(env.HTTP_PORT ?? 80),
        host,
        httpsPort: server.address().port,
      })
    : null;
await manager.start();
await manager.ready();
console.log(`listening on https://${domain}:${server.address().port}/ for ${names.join(', ')}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await http01?.close();
    await manager.stop();
    await store.close();
  });
}
