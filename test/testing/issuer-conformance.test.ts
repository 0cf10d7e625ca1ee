// The Issuer kit fails faulty issuers where their fault is, and passes the same CA without one
// (fixtures/issuer-faults.fixture.ts: the embedded CA with one fault each).
import { beforeAll, expect, it } from 'vitest';
import { type FixtureTest, failedIn, runFixture } from './run-fixture.js';

let tests: Map<string, FixtureTest>;
beforeAll(async () => {
  tests = await runFixture('issuer-faults.fixture.ts');
}, 240_000);

const suite = (name: string) => `Issuer conformance: ${name}`;
const ISSUE = 'issue(): a chain, leaf first, for exactly the requested name and the request key, valid now';
const ABORTED =
  'issue() with an already aborted signal rejects promptly with a CertkeeperError, before and after a first issuance';

it('passes the embedded CA without a fault', () => {
  expect(tests.size).toBeGreaterThan(0);
  expect(failedIn(tests, suite('reference'))).toEqual([]);
});

it.each([
  ['extra name', ISSUE, 'the leaf is for'],
  ['returns a key the leaf is not for', ISSUE, 'KEY_MISMATCH'],
  ['anchors of another CA', ISSUE, 'UNTRUSTED_ROOT'],
  [
    'server EKU whatever the purpose',
    "issue() for purpose 'client' carries its extended key usage",
    'clientAuth',
  ],
  ['ignores its signal', ABORTED, 'resolved although its signal was aborted'],
  ['fails with a plain Error', ABORTED, 'not a CertkeeperError'],
  ['puts the key in its error', ABORTED, 'private key material'],
  ['hangs once aborted', ABORTED, 'did not settle'],
  ['broken after an abort', ABORTED, 'stuck'],
  [
    'renew() hands back the current certificate',
    'renew() gives a new serial for the same names, for the key it certifies',
    'the renewed serial',
  ],
  [
    'revoke() revokes nothing',
    'revoke() leaves the issuer working, and the CA lists the serial when the factory can tell',
    'serial revoked',
  ],
  [
    'renewal window ends before it starts',
    'renewalWindow() is null or a window whose start is before its end',
    'expected',
  ],
  [
    'anchors include a leaf',
    'trustAnchors() lists CA certificates only, the same ones each time',
    'not a CA certificate',
  ],
  ['logs the request key', ISSUE, 'the issuer logged: a log line shows private key material'],
  ['close() throws the second time', 'close() is asynchronous and may be called twice', 'already closed'],
])('fails "%s" at: %s', (fault, title, why) => {
  const test = tests.get(`${suite(fault)} > ${title}`);
  expect(test?.status, `${fault} > ${title}`).toBe('failed');
  expect(test!.failure).toContain(why);
});

it('fails a fault only where it shows: the client-EKU fault still passes the server purpose', () => {
  const failed = failedIn(tests, suite('server EKU whatever the purpose'));
  expect(failed).toContain("issue() for purpose 'client' carries its extended key usage");
  expect(failed).not.toContain("issue() for purpose 'server' carries its extended key usage");
});
