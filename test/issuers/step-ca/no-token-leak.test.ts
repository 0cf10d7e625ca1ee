// A one-time token is a bearer credential: it must never appear in a log line, an event, the
// status, an error (message, details, JSON, inspect, stack) or the store. This test drives every
// path that touches a token, successes and each kind of failure, captures every surface, and
// searches the capture for any part of any token used.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { createCertificateManager } from '../../../src/manager/manager.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { nextEvent } from '../../support/events.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { context, makeRequest, mint, recordEvents, recorder } from '../../support/step-ca/harness.js';

let ca: FakeStepCa;
let dir: string;
beforeAll(async () => {
  ca = await FakeStepCa.start();
  dir = mkdtempSync(join(tmpdir(), 'certkeeper-leak-'));
});
afterAll(async () => {
  await ca.stop();
  rmSync(dir, { recursive: true, force: true });
});

const names = ['localhost', '127.0.0.1'];

it('no token, nor any part of one, appears in logs, events, status, errors or the store', async () => {
  const capture = recorder();
  const tokens: string[] = [];
  const minted = async (options: Parameters<typeof mint>[1]) => {
    const token = await mint(ca, options);
    tokens.push(token);
    return token;
  };
  const stores: MemoryStore[] = [];
  const manage = async (token: string, store = new MemoryStore()) => {
    stores.push(store);
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootFingerprint: ca.rootFingerprint, token });
    const manager = createCertificateManager({
      store,
      issuer,
      certificates: [{ id: 'api', names }],
      renewal: { retryMinMs: 1000 },
      logger: capture.logger,
    });
    recordEvents(manager, capture);
    return { manager, store };
  };

  // Success: enroll, renew, revoke (a fresh enrollment is then refused: the token is spent).
  const good = await minted({ subject: 'localhost', sans: names });
  const a = await manage(good);
  await a.manager.start();
  await a.manager.ready();
  await a.manager.renewNow('api');
  const refused = nextEvent(a.manager, 'renewalFailed');
  const revokeError = await a.manager.revoke('api', 'superseded').catch((e: unknown) => e);
  expect(revokeError).toMatchObject({ code: 'NEW_TOKEN_REQUIRED' });
  capture.capture(revokeError);
  await refused;
  capture.capture(a.manager.status());
  await a.manager.stop();

  // The CA refusing a replayed token (another store), then the local "already used".
  const b = await manage(good);
  const replayed = nextEvent(b.manager, 'renewalFailed');
  await b.manager.start();
  capture.capture(await replayed);
  capture.capture(b.manager.status());
  await b.manager.stop();
  const c = await manage(good, b.store);
  const used = nextEvent(c.manager, 'renewalFailed');
  await c.manager.start();
  expect((await used).error.code).toBe('TOKEN_ALREADY_USED');
  capture.capture(c.manager.status());
  await c.manager.stop();

  // Every client-side refusal, and a CA that quotes the request (token included) in its error.
  const failing = [
    await minted({ subject: 'localhost', sans: names, now: Date.now() - 10 * 60_000 }),
    await minted({ subject: 'localhost', sans: names, now: Date.now() + 10 * 60_000 }),
    await minted({ subject: 'localhost', sans: ['other.test'] }),
    await minted({ subject: 'localhost', sans: names, caUrl: 'https://elsewhere.test' }),
    await minted({ subject: 'localhost', sans: names, rootFingerprint: 'cd'.repeat(32) }),
  ];
  ca.faults.set('/1.0/sign', 'echo');
  const echoed = await minted({ subject: 'localhost', sans: names });
  const codes: string[] = [];
  for (const token of [...failing, echoed]) {
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem, token });
    const error = await issuer
      .issue(await makeRequest(names), context(undefined, { logger: capture.logger }))
      .catch((e) => e);
    codes.push(error.code);
    capture.capture(error);
  }
  ca.faults.delete('/1.0/sign');
  expect(codes).toEqual([
    'TOKEN_EXPIRED',
    'TOKEN_NOT_YET_VALID',
    'TOKEN_NAMES_MISMATCH',
    'TOKEN_AUDIENCE_MISMATCH',
    'TOKEN_ROOT_MISMATCH',
    'CA_REFUSED',
  ]);

  // A malformed token in a file.
  const file = join(dir, 'token');
  const garbled = `${good.slice(0, -10)}!!!`;
  writeFileSync(file, garbled);
  const fromFile = new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem, token: { file } });
  capture.capture(await fromFile.issue(await makeRequest(names), context()).catch((e) => e));

  for (const store of stores) {
    for (const key of await store.list(''))
      capture.capture(Buffer.from((await store.get(key))!).toString('utf8'));
  }

  const text = capture.text();
  expect(text).toMatch(/TOKEN_REJECTED/);
  expect(text).toMatch(/\[token\]/); // the echoed token was cut out of the CA's message
  for (const token of [...tokens, garbled]) {
    const [, payload, signature] = token.split('.');
    // Every 16-character window of the claims and the signature (the header is shared by all tokens).
    for (const part of [payload!, signature!]) {
      for (let i = 0; i + 16 <= part.length; i += 8) expect(text).not.toContain(part.slice(i, i + 16));
    }
  }
});
