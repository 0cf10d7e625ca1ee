// HTTPS with no configuration: the embedded CA issues a certificate for localhost, kept in
// ./.certkeeper (or $CERTKEEPER_DIR), renewed before it expires and swapped in without a restart.
// A restart serves the stored certificate at once. Trust its root with `certkeeper export-root`
// or `certkeeper trust install` (docs/getting-started.md).
//
// Environment: PORT (default 8443; 0 picks a free one), HOST (default 127.0.0.1).
import { createCertificateManager, createHttpsServer } from 'certkeeper';

const manager = createCertificateManager({
  certificates: [{ names: ['localhost', '127.0.0.1'] }],
});
manager.on('obtained', (e) =>
  console.log(`issued ${e.id}: serial ${e.serial}, valid until ${e.notAfter.toISOString()}`),
);
manager.on('renewalFailed', (e) =>
  console.warn(`renewal of ${e.id} failed: ${e.error.code} ${e.error.message}`),
);

await manager.start(); // serves what the store holds; a first run issues now
await manager.ready();

const server = createHttpsServer(manager, {}, (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello over ${req.socket.getProtocol()}\n`);
});
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () => {
  const { serial } = manager.certificate('localhost');
  console.log(`listening on https://localhost:${server.address().port}/ (certificate serial ${serial})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await manager.stop();
  });
}
