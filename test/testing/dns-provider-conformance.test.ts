// The DnsProvider kit fails faulty providers where their fault is, and passes the same provider
// without one; the ChallengeSolver kit fails Dns01Solver over a provider that clears whole names
// (fixtures/dns-faults.fixture.ts, on pebble-challtestsrv's DNS server).
import { beforeAll, describe, expect, it } from 'vitest';
import { pebbleAvailable } from '../support/pebble.js';
import { type FixtureTest, failedIn, runFixture } from './run-fixture.js';

const provider = (name: string) => `DnsProvider conformance: ${name}`;

(pebbleAvailable() || process.env.CI === 'true' ? describe : describe.skip)('the DnsProvider kit', () => {
  let tests: Map<string, FixtureTest>;
  beforeAll(async () => {
    tests = await runFixture('dns-faults.fixture.ts');
  }, 240_000);

  it('passes ChallTestSrvProvider without a fault', () => {
    expect(tests.size).toBeGreaterThan(0);
    expect(failedIn(tests, provider('reference'))).toEqual([]);
  });

  it.each([
    [
      'removal clears the name',
      'several values at one name coexist, and removeTxt removes exactly its value',
      'TXT _acme-challenge.',
    ],
    [
      'setTxt publishes nothing',
      'setTxt makes the value visible to a resolver; removeTxt takes it away',
      'TXT _acme-challenge.',
    ],
    [
      'removeTxt refuses a value it does not hold',
      'removeTxt of a value never set, or twice, resolves and leaves the other values',
      'no such value',
    ],
    [
      'a broken API throws plain Errors',
      'a failing API: setTxt and removeTxt reject promptly with a CertkeeperError without secrets',
      'not a CertkeeperError',
    ],
  ])('fails "%s" at: %s', (fault, title, why) => {
    const test = tests.get(`${provider(fault)} > ${title}`);
    expect(test?.status, `${fault} > ${title}`).toBe('failed');
    expect(test!.failure).toContain(why);
  });

  it('fails Dns01Solver over a provider that clears whole names where a wildcard and its base meet', () => {
    expect(
      failedIn(
        tests,
        'ChallengeSolver conformance: Dns01Solver over a provider whose removal clears the name',
      ),
    ).toEqual([
      'two answers for one name at once (a wildcard and its base): cleanup() of one keeps the other',
    ]);
  });
});
