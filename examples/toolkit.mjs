// A small real example of the toolkit (the lifecycle demo replaces it as `npm start`):
// make a CA, issue a leaf for localhost, validate the bundle, keep it in a FileStore,
// serve HTTPS with it and call the server with a client that trusts only that CA.

import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from 'certkeeper';
import { createCertificate, PrivateKey, validateBundle } from 'certkeeper/crypto';

const now = Date.now();
const caKey = await PrivateKey.generate();
const ca = await createCertificate({
  publicKey: caKey,
  commonName: 'certkeeper example CA',
  isCA: true,
  notBefore: new Date(now - 60_000),
  notAfter: new Date(now + 3_600_000),
});
const key = await PrivateKey.generate();
const leaf = await createCertificate({
  publicKey: key,
  issuer: { key: caKey, certificate: ca },
  names: ['localhost', '127.0.0.1'],
  extKeyUsage: ['serverAuth'],
  notBefore: new Date(now - 60_000),
  notAfter: new Date(now + 600_000),
});

const verdict = validateBundle({ key, chain: leaf.pem, names: ['localhost'], trustAnchors: ca.pem });
if (!verdict.ok) throw verdict.error;
console.log(`validated: serial ${verdict.leaf.serialNumber}, names ${verdict.leaf.names.join(', ')}`);

const dir = mkdtempSync(join(tmpdir(), 'certkeeper-example-'));
const store = new FileStore({ directory: dir });
// Plain keys of our own: the manager's layout of the store is its business, not the toolkit's.
const gen = {
  cert: `example/${leaf.info.serialNumber}/cert.pem`,
  key: `example/${leaf.info.serialNumber}/key.pem`,
};
await store.put(gen.cert, leaf.pem);
await store.put(gen.key, key.toPem());
console.log(`stored under ${dir}/example/${leaf.info.serialNumber}`);

const server = https.createServer(
  { key: Buffer.from(await store.get(gen.key)), cert: Buffer.from(await store.get(gen.cert)) },
  (_req, res) => res.end('hello from a certkeeper certificate\n'),
);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const body = await new Promise((resolve, reject) => {
  https
    .get({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.pem }, (res) => {
      const cert = res.socket.getPeerCertificate();
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(`${text.trim()} (served serial ${cert.serialNumber.toLowerCase()})`));
    })
    .on('error', reject);
});
console.log(body);
server.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
