// A plain TLS server (no HTTP) with a certificate from the embedded CA, renewed and swapped in
// while it runs: it answers each line a client sends with the same line in upper case.
//
// Environment: PORT (default 8443; 0 picks a free one), HOST (default 127.0.0.1), CERTKEEPER_DIR.
import { createInterface } from 'node:readline';
import { createCertificateManager, createTlsServer } from 'certkeeper';

const manager = createCertificateManager({ certificates: [{ names: ['localhost', '127.0.0.1'] }] });
await manager.start();
await manager.ready();

const sockets = new Set();
const server = createTlsServer(manager, { minVersion: 'TLSv1.2' }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {}); // a client going away mid-line is not the server's problem
  createInterface({ input: socket }).on('line', (line) => socket.write(`${line.toUpperCase()}\n`));
});
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () =>
  console.log(`listening on tls://localhost:${server.address().port}`),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    for (const socket of sockets) socket.end();
    await manager.stop();
  });
}
