// ChallTestSrvProvider against the DnsProvider conformance kit: records set through
// pebble-challtestsrv's management API, checked with real DNS queries at its DNS server.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ChallTestSrvProvider } from '../../../src/challenges/providers/challtestsrv.js';
import { runDnsProviderConformance } from '../../../src/testing/index.js';
import { type Pebble, pebbleAvailable, startPebble } from '../../support/pebble.js';
import { closedPort } from '../../support/services.js';

if (!pebbleAvailable() && process.env.CI !== 'true') {
  describe.skip('ChallTestSrvProvider conformance (no pebble-challtestsrv)', () =>
    it('needs pebble-challtestsrv', () => {}));
} else {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble({ startTimeoutMs: 30_000 }); // slow to start on a loaded machine
  }, 60_000);
  afterAll(() => pebble?.stop());

  await runDnsProviderConformance('ChallTestSrvProvider', () => ({
    provider: new ChallTestSrvProvider(pebble.challtestsrv.url),
    zone: 'dns-kit.test',
    resolvers: [pebble.challtestsrv.dnsServer],
    broken: async () => new ChallTestSrvProvider(`http://127.0.0.1:${await closedPort()}`),
  }));
}
