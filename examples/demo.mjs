// The certkeeper demo (`npm start`): an HTTPS server on localhost whose certificate comes from
// the embedded CA and lives about a minute, and a client that keeps calling it through every
// rotation. No configuration, no network. Ctrl-C stops it.
//
// Environment (all optional): PORT (default 8443, falls back to any free port),
// CERTKEEPER_DEMO_LIFETIME_MS (default 60000), CERTKEEPER_DEMO_DURATION_MS (stop by itself).

import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateManager, createHttpsServer, FileStore, InternalCA } from 'certkeeper';

const lifetimeMs = Number(process.env.CERTKEEPER_DEMO_LIFETIME_MS ?? 60_000);
const durationMs = Number(process.env.CERTKEEPER_DEMO_DURATION_MS ?? 0);
const wantedPort = Number(process.env.PORT ?? 8443);
const directory = mkdtempSync(join(tmpdir(), 'certkeeper-demo-'));

const ca = new InternalCA({ name: 'demo', lifetimeMs });
const manager = createCertificateManager({
  store: new FileStore({ directory }),
  issuer: ca,
  certificates: [{ id: 'localhost', names: ['localhost', '127.0.0.1'] }],
  renewal: { retryMinMs: 1_000 },
});

const time = (d) => d.toISOString().slice(11, 19);
let requests = 0;
let failures = 0;
let rotations = 0;
let lastError = '';

manager.on('obtained', (e) =>
  console.log(`obtained  serial ${e.serial}  notAfter ${time(e.notAfter)}  in ${e.durationMs} ms`),
);
manager.on('swapped', (e) => {
  if (e.previousSerial === null) return;
  rotations++;
  console.log(
    `rotation ${rotations}: serial ${e.serial}  notAfter ${time(new Date(manager.certificate(e.id).notAfter))}  ` +
      `verified on ${e.verified}/${e.servers} server  | requests ${requests}  failures ${failures}`,
  );
});
manager.on('renewalFailed', (e) =>
  console.log(`renewal failed (${e.error.code}): ${e.error.message}; retry ${time(e.retryAt)}`),
);
manager.on('rolledBack', (e) => console.log(`rolled back (${e.reason.code}): ${e.reason.message}`));

// Ctrl-C is handled from here on, start-up included, so that the directory is always removed.
let stopping = false;
let running = true;
let server;
let loop;
let ticker;
const started = manager.start();
const startup = started.then(() => manager.ready()).then(() => ca.rootCertificate());
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
const root = await startup.catch((error) => {
  if (!stopping) throw error;
});
if (stopping) await new Promise(() => {}); // interrupted: shutdown() removes the directory and exits

server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
const port = await new Promise((resolve, reject) => {
  const onError = (error) => {
    if (error.code !== 'EADDRINUSE' || server.listening) return reject(error);
    server.listen(0, '127.0.0.1');
  };
  server.on('error', onError);
  server.listen(wantedPort, '127.0.0.1', () => resolve(server.address().port));
  server.once('listening', () => resolve(server.address().port));
});
console.log(
  `serving https://localhost:${port}/ with certificates living ${lifetimeMs / 1000} s; Ctrl-C stops`,
);

// The client: a new TLS connection for every request, verifying the chain against the demo root,
// so every handshake after a rotation proves the new certificate is served and trusted.
function call() {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: 'localhost', ca: root, agent: false, path: '/' },
      (res) => {
        res.resume();
        res.on('end', () => {
          requests++;
          if (res.statusCode !== 200) failures++;
          resolve();
        });
      },
    );
    req.on('error', (error) => {
      requests++;
      failures++;
      lastError = error.message;
      resolve();
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}
loop = (async () => {
  while (running) {
    await call();
    await new Promise((r) => setTimeout(r, 25));
  }
})();
ticker = setInterval(
  () =>
    console.log(`requests ${requests}  failures ${failures}${lastError ? `  last error: ${lastError}` : ''}`),
  10_000,
);

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  running = false;
  clearInterval(ticker);
  await loop;
  await started.catch(() => {}); // stop() in the middle of start() could leave its loop running
  await manager.stop();
  await startup.catch(() => {}); // an interrupted start-up settles before its files are removed
  if (server) await new Promise((r) => server.close(r));
  rmSync(directory, { recursive: true, force: true });
  console.log(`stopped (${signal}): rotations ${rotations}  requests ${requests}  failures ${failures}`);
  process.exit(failures === 0 ? 0 : 1);
}
if (durationMs > 0) setTimeout(() => shutdown('duration'), durationMs);
