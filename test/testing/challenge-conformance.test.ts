// The ChallengeSolver kit fails faulty solvers where their fault is, and passes the same solver
// without one (fixtures/solver-faults.fixture.ts: HTTP-01 and TLS-ALPN-01 with one fault each).
import { beforeAll, expect, it } from 'vitest';
import { type FixtureTest, failedIn, runFixture } from './run-fixture.js';

let tests: Map<string, FixtureTest>;
beforeAll(async () => {
  tests = await runFixture('solver-faults.fixture.ts');
}, 240_000);

const suite = (name: string) => `ChallengeSolver conformance: ${name}`;
const PRESENT =
  'present() makes each kind of answer reachable the way a CA reaches it; cleanup() takes it away and leaves the store as it was';

it('passes HTTP-01 without a fault', () => {
  expect(tests.size).toBeGreaterThan(0);
  expect(failedIn(tests, suite('reference'))).toEqual([]);
});

it.each([
  ['cleanup leaves the answer', PRESENT, 'is left after cleanup: HTTP 200'],
  ['cleanup leaves a store key behind', PRESENT, 'the store after present() and cleanup()'],
  ['serves another answer', PRESENT, 'the CA finds no answer'],
  [
    'claims wildcards',
    'supports() answers as declared for DNS names, wildcards and IP addresses, each time',
    'supports() for wildcard',
  ],
  [
    'refuses a repeated present',
    'present() twice (the CA asks again) is harmless: answered, and one cleanup() removes it',
    'already there',
  ],
  [
    'refuses to clean up a stranger',
    'cleanup() of a challenge never presented resolves and touches no other answer',
    'never presented',
  ],
  [
    'fails an aborted present with a plain Error',
    'present() with an aborted signal settles promptly, a rejection typed; cleanup() then leaves nothing',
    'not a CertkeeperError',
  ],
  [
    'TLS-ALPN-01 with the digest of another key authorization',
    PRESENT,
    'the acmeIdentifier holds another digest',
  ],
])('fails "%s" at: %s', (fault, title, why) => {
  const test = tests.get(`${suite(fault)} > ${title}`);
  expect(test?.status, `${fault} > ${title}`).toBe('failed');
  expect(test!.failure).toContain(why);
});

it('fails a fault only where it shows: a solver claiming wildcards still answers correctly', () => {
  expect(failedIn(tests, suite('claims wildcards'))).toEqual([
    'supports() answers as declared for DNS names, wildcards and IP addresses, each time',
  ]);
});
