// AcmeIssuer against the Issuer conformance kit, with a real Pebble: HTTP-01 for DNS and IP
// names (answered from the test's store on Pebble's httpPort), DNS-01 through challtestsrv for
// wildcards; revocation checked in Pebble's certificate status.
import http from 'node:http';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Dns01Solver } from '../../../src/challenges/dns-01.js';
import { createHttp01Handler, Http01Solver } from '../../../src/challenges/http-01.js';
import { ChallTestSrvProvider } from '../../../src/challenges/providers/challtestsrv.js';
import { AcmeIssuer } from '../../../src/issuers/acme/acme-issuer.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { runIssuerConformance } from '../../../src/testing/index.js';
import { type Pebble, pebbleAvailable, startPebble } from '../../support/pebble.js';
import { closedPort } from '../../support/services.js';

if (!pebbleAvailable() && process.env.CI !== 'true') {
  describe.skip('AcmeIssuer conformance (no Pebble)', () => it('needs Pebble', () => {}));
} else {
  let pebble: Pebble;
  let root: string;
  /** The store of the running test: the HTTP-01 listener answers from it. */
  let store = new MemoryStore();
  const answering = http.createServer((req, res) => createHttp01Handler(store)(req, res));

  beforeAll(async () => {
    pebble = await startPebble({ startTimeoutMs: 30_000 }); // slow to start on a loaded machine
    root = await pebble.roots();
    await new Promise<void>((resolve) => answering.listen(pebble.httpPort, '127.0.0.1', resolve));
  }, 60_000);
  afterAll(async () => {
    answering.closeAllConnections();
    await new Promise((resolve) => answering.close(resolve));
    await pebble?.stop();
  });

  const options = () => ({
    directoryUrl: pebble.directoryUrl,
    ca: pebble.caPem,
    agreeToTerms: true,
    challenges: [
      new Http01Solver(),
      new Dns01Solver({
        provider: new ChallTestSrvProvider(pebble.challtestsrv.url),
        resolvers: [pebble.challtestsrv.dnsServer],
        pollIntervalMs: 50,
      }),
    ],
    trustAnchors: [root],
  });

  await runIssuerConformance('AcmeIssuer (Pebble)', () => {
    store = new MemoryStore();
    return {
      issuer: new AcmeIssuer(options()),
      domain: 'acme-kit.test',
      wildcard: true,
      ip: '127.0.0.1',
      keyTypes: ['ec-p256', 'rsa-2048'],
      context: { store },
      isRevoked: async (serial) => (await pebble.certStatus(serial))?.Status === 'Revoked',
      unreachable: async () =>
        new AcmeIssuer({ ...options(), directoryUrl: `https://127.0.0.1:${await closedPort()}/dir` }),
    };
  });
}
