// An HTTP/2 server (HTTP/1.1 clients welcome too) whose certificate comes from the embedded CA and
// is renewed and swapped in while it runs; it answers with the protocol version it spoke.
//
// Environment: PORT (default 8443; 0 picks a free one), HOST (default 127.0.0.1), CERTKEEPER_DIR.
import { createCertificateManager, createHttp2SecureServer } from 'certkeeper';

const manager = createCertificateManager({ certificates: [{ names: ['localhost', '127.0.0.1'] }] });
await manager.start();
await manager.ready();

// Every option is Node's own and is kept across certificate swaps.
const server = createHttp2SecureServer(manager, { allowHTTP1: true }, (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello over HTTP/${req.httpVersion}\n`);
});
const sessions = new Set();
server.on('session', (session) => {
  sessions.add(session);
  session.on('close', () => sessions.delete(session));
});
server.listen(Number(process.env.PORT ?? 8443), process.env.HOST ?? '127.0.0.1', () =>
  console.log(`listening on https://localhost:${server.address().port}/`),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    for (const session of sessions) session.close(); // lets requests in flight finish
    await manager.stop();
  });
}
