// examples/acme.mjs against Pebble with each challenge type: TLS-ALPN-01 answered by the HTTPS
// server itself (Pebble's VA dials the example's port), HTTP-01 by its port-80 listener, DNS-01
// through challtestsrv with a wildcard. The certificate then serves over HTTPS, its chain ending
// at Pebble's root.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';
import { cleanup, hexSerial, httpsGet, requireBuild, startExample, tempDir } from './support.js';

describePebble('examples/acme.mjs', () => {
  let pebble: Pebble;
  let rootFile: string;
  let root: string;
  beforeAll(async () => {
    requireBuild();
    pebble = await startPebble();
    root = await pebble.roots();
    rootFile = join(pebble.dir, 'issuing-root.pem');
    writeFileSync(rootFile, root);
  }, 60_000);
  afterAll(() => pebble?.stop());
  afterEach(cleanup);

  const cases = [
    { challenge: 'tls-alpn-01', domain: 'alpn.test', also: [] as string[] },
    { challenge: 'http-01', domain: 'http.test', also: [] as string[] },
    { challenge: 'dns-01', domain: 'dns.test', also: ['www.dns.test'] },
  ];
  it.each(cases)(
    '$challenge: obtains a certificate from Pebble and serves it',
    { timeout: 120_000 },
    async ({ challenge, domain, also }) => {
      const dir = tempDir(challenge);
      const example = startExample('acme.mjs', {
        CHALLENGE: challenge,
        DOMAIN: domain,
        ACME_DIRECTORY_URL: pebble.directoryUrl,
        ACME_CA_FILE: join(pebble.dir, 'ca.pem'),
        ACME_ROOT_FILE: rootFile,
        HOST: '127.0.0.1',
        // Pebble's VA validates TLS-ALPN-01 on tlsPort and HTTP-01 on httpPort.
        PORT: challenge === 'tls-alpn-01' ? String(pebble.tlsPort) : '0',
        HTTP_PORT: String(pebble.httpPort),
        CHALLTESTSRV_URL: pebble.challtestsrv.url,
        DNS_RESOLVERS: pebble.challtestsrv.dnsServer,
        CERTKEEPER_DIR: join(dir, 'store'),
      });
      const [, serial] = await example.waitFor(
        new RegExp(`obtained site by ${challenge}: serial ([0-9a-f]+)`),
      );
      const port = Number((await example.waitFor(/listening on https:\/\/[^:]+:(\d+)\//))[1]);
      for (const name of [domain, ...also]) {
        const answer = await httpsGet(port, '/', { ca: root, servername: name });
        expect([answer.status, answer.body, answer.serial]).toEqual([
          200,
          `hello from ${name}\n`,
          hexSerial(serial!),
        ]);
      }
      if (challenge === 'http-01') {
        // The port-80 listener sends everything that is not a validation to HTTPS.
        const redirect = await new Promise<[number | undefined, string | undefined]>((done, fail) =>
          http
            .get(
              {
                host: '127.0.0.1',
                port: pebble.httpPort,
                path: '/x?y=1',
                headers: { host: domain },
                agent: false,
              },
              (res) => {
                res.resume();
                done([res.statusCode, res.headers.location]);
              },
            )
            .on('error', fail),
        );
        expect(redirect).toEqual([301, `https://${domain}:${port}/x?y=1`]);
      }
      expect(await example.stop()).toEqual({ code: 0, signal: null });
    },
  );
});
