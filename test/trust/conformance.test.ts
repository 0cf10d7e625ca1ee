// The TrustSource conformance suite from certkeeper/testing, run against every source certkeeper
// ships, each with a real peer: files on disk, an HTTPS endpoint on loopback, the embedded CA in
// a store, the fake step-ca.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runTrustSourceConformance } from '../../src/testing/trust-source-conformance.js';
import { BootstrapTrustSource } from '../../src/trust/bootstrap-source.js';
import { makeBundle } from '../../src/trust/bundle.js';
import { FileTrustSource } from '../../src/trust/file-source.js';
import { InternalCaTrustSource } from '../../src/trust/internal-ca-source.js';
import { pemSource } from '../../src/trust/source.js';
import { UrlTrustSource } from '../../src/trust/url-source.js';
import { makePki, makeRoot } from '../support/pki.js';
import { FakeStepCa } from '../support/step-ca/ca.js';
import { listen } from '../support/tls.js';

const fingerprints = (pems: string[]) => [...makeBundle(pems, 1).fingerprints];

await runTrustSourceConformance('pemSource', async () => {
  const a = await makeRoot('A');
  const b = await makeRoot('B');
  return {
    source: pemSource('explicit', [a.certificate.pem + b.certificate.pem]),
    expected: fingerprints([a.certificate.pem, b.certificate.pem]),
  };
});

await runTrustSourceConformance('FileTrustSource', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-conf-'));
  const path = join(dir, 'ca.pem');
  const a = await makeRoot('A');
  const b = await makeRoot('B');
  writeFileSync(path, a.certificate.pem);
  const replace = (text: string) => {
    writeFileSync(join(dir, '.tmp'), text);
    renameSync(join(dir, '.tmp'), path);
  };
  return {
    source: new FileTrustSource({ paths: [path], pollIntervalMs: 100 }),
    expected: fingerprints([a.certificate.pem]),
    change: async () => {
      replace(a.certificate.pem + b.certificate.pem);
      return fingerprints([a.certificate.pem, b.certificate.pem]);
    },
    break: async () => replace('-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});

await runTrustSourceConformance('UrlTrustSource', async () => {
  const a = await makeRoot('Published A');
  const b = await makeRoot('Published B');
  const pki = await makePki({ names: ['127.0.0.1'] });
  let body: string | null = a.certificate.pem;
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (_req, res) => {
    if (body === null) res.writeHead(503).end('<html>down for maintenance</html>');
    else res.end(body);
  });
  const port = await listen(server);
  return {
    source: new UrlTrustSource({
      url: `https://127.0.0.1:${port}/bundle.pem`,
      ca: pki.rootPem,
      refreshIntervalMs: 100,
    }),
    expected: fingerprints([a.certificate.pem]),
    change: async () => {
      body = b.certificate.pem;
      return fingerprints([b.certificate.pem]);
    },
    break: async () => {
      body = null;
    },
    cleanup: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});

await runTrustSourceConformance('InternalCaTrustSource', async () => {
  const store = new MemoryStore();
  const ca = new InternalCA({ name: 'conformance' });
  const root = await ca.rootCertificate(store);
  return {
    source: new InternalCaTrustSource(ca, { store }),
    expected: fingerprints([root]),
    change: async () => {
      await ca.beginRootRotation(store);
      return fingerprints(await ca.publishedRoots(store));
    },
  };
});

await runTrustSourceConformance('BootstrapTrustSource', async () => {
  const ca = await FakeStepCa.start();
  return {
    source: new BootstrapTrustSource({ caUrl: ca.url, fingerprint: ca.rootFingerprint }),
    expected: [ca.rootFingerprint],
    break: () => ca.stop(),
    cleanup: () => ca.stop(),
  };
});
