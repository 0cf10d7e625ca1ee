// An HTTPS service that enrolls with a step-ca compatible CA using a one-time token minted on the
// host (`certkeeper token …` or `step ca token …`) and handed over as a file: the CA's root is
// fetched once and pinned by its fingerprint, the token is used once, and from then on the
// service renews over mutual TLS with its own certificate. A restart serves the stored
// certificate and needs no token.
//
// Environment: STEP_CA_URL, ROOT_FINGERPRINT (`step certificate fingerprint root_ca.crt`),
// TOKEN_FILE (default /run/secrets/enroll-token), NAMES (comma-separated, as in the token;
// default localhost), PORT (default 8443; 0 picks a free one), HOST (default 127.0.0.1),
// CERTKEEPER_DIR.
import { createCertificateManager, createHttpsServer } from 'certkeeper';
import { StepCaIssuer } from 'certkeeper/step-ca';

const env = process.env;
const names = (env.NAMES ?? 'localhost').split(',');
const issuer = new StepCaIssuer({
  caUrl: env.STEP_CA_URL ?? 'https://ca.internal:9000',
  rootFingerprint: env.ROOT_FINGERPRINT,
  token: { file: env.TOKEN_FILE ?? '/run/secrets/enroll-token' },
});
const manager = createCertificateManager({ issuer, certificates: [{ id: 'service', names }] });
manager.on('obtained', (e) =>
  console.log(`enrolled: serial ${e.serial}, valid until ${e.notAfter.toISOString()}`),
);
manager.on('renewalFailed', (e) => console.warn(`attempt failed: ${e.error.code} ${e.error.message}`));
await manager.start();
await manager.ready();

const server = createHttpsServer(manager, {}, (_req, res) => res.end('hello from an enrolled service\n'));
server.listen(Number(env.PORT ?? 8443), env.HOST ?? '127.0.0.1', () => {
  const { serial } = manager.certificate('service');
  console.log(`listening on https://${names[0]}:${server.address().port}/ (certificate serial ${serial})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await manager.stop();
    await issuer.close(); // ours: stops watching the token file
  });
}
