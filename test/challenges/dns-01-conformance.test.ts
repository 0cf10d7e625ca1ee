// Dns01Solver against the ChallengeSolver conformance kit: records set through
// pebble-challtestsrv, propagation awaited at its DNS server, which the kit queries as a CA would.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Dns01Solver } from '../../src/challenges/dns-01.js';
import { ChallTestSrvProvider } from '../../src/challenges/providers/challtestsrv.js';
import { runChallengeSolverConformance } from '../../src/testing/index.js';
import { type Pebble, pebbleAvailable, startPebble } from '../support/pebble.js';

if (!pebbleAvailable() && process.env.CI !== 'true') {
  describe.skip('Dns01Solver conformance (no pebble-challtestsrv)', () =>
    it('needs pebble-challtestsrv', () => {}));
} else {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble({ startTimeoutMs: 30_000 }); // slow to start on a loaded machine
  }, 60_000);
  afterAll(() => pebble?.stop());

  await runChallengeSolverConformance('Dns01Solver (challtestsrv)', () => ({
    solver: new Dns01Solver({
      provider: new ChallTestSrvProvider(pebble.challtestsrv.url),
      resolvers: [pebble.challtestsrv.dnsServer],
      pollIntervalMs: 50,
      propagationTimeoutMs: 5_000,
    }),
    domain: 'dns01-kit.test',
    ip: '127.0.0.1',
    supports: { dns: true, wildcard: true, ip: false },
    reach: { dns: { servers: [pebble.challtestsrv.dnsServer] } },
  }));
}
