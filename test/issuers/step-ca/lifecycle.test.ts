// Token enrollment through the manager, against the fake step-ca over real HTTPS: enroll →
// serve → renew (seconds-long certificates) → hot swap under a client loop; renewal after
// expiry allowed and refused; rekey; revocation; the CA down or answering garbage at renewal
// time; a restart that must not present the token again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { systemClock } from '../../../src/clock.js';
import { isRetryable } from '../../../src/errors.js';
import { StepCaIssuer, type StepCaIssuerOptions } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { type CertificateManager, createCertificateManager } from '../../../src/manager/manager.js';
import { DEFAULT_RENEWAL_POLICY } from '../../../src/manager/policy.js';
import { createHttpsServer } from '../../../src/server/create-server.js';
import { layout } from '../../../src/store/layout.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { Store } from '../../../src/store/store.js';
import { nextEvent } from '../../support/events.js';
import { FakeStepCa, type FakeStepCaOptions, type Fault } from '../../support/step-ca/ca.js';
import { mint, recorder } from '../../support/step-ca/harness.js';
import { close, handshake, listen } from '../../support/tls.js';

const names = ['localhost', '127.0.0.1'];
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface Setup {
  ca: FakeStepCa;
  manager: CertificateManager;
  issuer: StepCaIssuer;
  store: Store;
  token: string;
  log: ReturnType<typeof recorder>;
}

async function setup(
  options: {
    ca?: FakeStepCaOptions;
    issuer?: Partial<StepCaIssuerOptions>;
    clock?: Clock;
    store?: Store;
    existingCa?: FakeStepCa;
    token?: string;
  } = {},
): Promise<Setup> {
  const ca = options.existingCa ?? (await FakeStepCa.start(options.ca));
  if (!options.existingCa) cleanup.push(() => ca.stop());
  const token = options.token ?? (await mint(ca, { subject: 'localhost', sans: names }));
  const issuer = new StepCaIssuer({
    caUrl: ca.url,
    rootFingerprint: ca.rootFingerprint,
    token,
    ...options.issuer,
  });
  const store = options.store ?? new MemoryStore();
  const log = recorder();
  const manager = createCertificateManager({
    store,
    issuer,
    certificates: [{ id: 'api', names }],
    renewal: { retryMinMs: 1000 },
    logger: log.logger,
    clock: options.clock ?? systemClock,
  });
  cleanup.push(() => manager.stop());
  return { ca, manager, issuer, store, token, log };
}

async function serve(manager: CertificateManager): Promise<number> {
  const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
  const port = await listen(server);
  cleanup.push(() => close(server));
  return port;
}

/** One HTTPS request on a fresh connection; resolves with the serial the server presented. */
function get(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: 'localhost', ca, agent: false, path: '/', timeout: 3000 },
      (res) => {
        const serial = (res.socket as import('node:tls').TLSSocket)
          .getPeerCertificate()
          .serialNumber.toLowerCase();
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(serial) : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

const served = (s: Setup) => s.manager.status()[0]!.serial;

describe('enroll → serve → renew → hot swap', () => {
  it('enrolls with the token, serves it, renews over mTLS twice, with no failed request', async () => {
    const s = await setup({ ca: { duration: { defaultMs: 3000, minMs: 1000, backdateMs: 1000 } } });
    await s.manager.start();
    await s.manager.ready();
    const port = await serve(s.manager);
    const key = s.manager.credentials('api')!.key.publicKeyFingerprint();
    const renewed: string[] = [];
    s.manager.on('renewed', (e) => renewed.push(e.serial));
    const seen = new Set<string>();
    let ok = 0;
    const failures: string[] = [];
    const deadline = Date.now() + 15_000;
    // Until two renewals happened and a few requests went to the last certificate.
    let after = 0;
    while (after < 5 && Date.now() < deadline) {
      if (renewed.length >= 2) after++;
      try {
        seen.add(await get(port, s.ca.rootPem));
        ok++;
      } catch (error) {
        failures.push(String(error));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(failures).toEqual([]);
    // Two at least: on a loaded machine the last requests can outlast a third renewal window.
    expect(renewed.length).toBeGreaterThanOrEqual(2);
    expect(ok).toBeGreaterThan(20);
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(seen).toContain(served(s));
    expect(s.ca.requests('/1.0/sign')).toBe(1);
    expect(s.ca.log.filter((e) => e.path === '/1.0/renew' && e.status === 201)).toHaveLength(renewed.length);
    // /renew keeps the key.
    expect(s.manager.credentials('api')!.key.publicKeyFingerprint()).toBe(key);
  }, 20_000);

  it('with rekey, each renewal certifies a new key (POST /1.0/rekey)', async () => {
    const s = await setup({ issuer: { rekey: true } });
    await s.manager.start();
    await s.manager.ready();
    const key = s.manager.credentials('api')!.key.publicKeyFingerprint();
    await s.manager.renewNow('api');
    expect(s.manager.credentials('api')!.key.publicKeyFingerprint()).not.toBe(key);
    expect(s.ca.log.filter((e) => e.path === '/1.0/rekey').map((e) => e.status)).toEqual([201]);
  });
});

describe('renewal after expiry', () => {
  /** A host that slept: the manager's and the CA's clocks jump 25 h past a 24 h certificate. */
  async function expired(allow: boolean) {
    let offset = 0;
    const clock: Clock = { ...systemClock, now: () => Date.now() + offset };
    const s = await setup({ ca: { now: clock.now, allowRenewalAfterExpiry: allow }, clock });
    await s.manager.start();
    await s.manager.ready();
    const before = served(s);
    offset = 25 * 3_600_000;
    return { s, before };
  }

  it('allowed: renews with the x5c token signed by the old key, not over mTLS', async () => {
    const { s, before } = await expired(true);
    const key = s.manager.credentials('api')!.key.publicKeyFingerprint();
    const renewed = nextEvent(s.manager, 'renewed');
    await s.manager.renewNow('api');
    expect((await renewed).previousSerial).toBe(before);
    expect(s.manager.credentials('api')!.key.publicKeyFingerprint()).toBe(key);
    expect(s.ca.log.filter((e) => e.path === '/1.0/renew').map((e) => e.status)).toEqual([201]);
    expect(s.ca.reasons()).not.toContain('client certificate rejected');
  });

  it('refused: a clear NEW_TOKEN_REQUIRED, the old certificate kept', async () => {
    const { s, before } = await expired(false);
    const failed = nextEvent(s.manager, 'renewalFailed');
    await expect(s.manager.renewNow('api')).rejects.toMatchObject({ code: 'NEW_TOKEN_REQUIRED' });
    const { error } = await failed;
    expect(error.code).toBe('NEW_TOKEN_REQUIRED');
    expect(error.message).toMatch(/expired at .* does not renew expired certificates.*new one-time token/);
    expect(served(s)).toBe(before);
    expect(s.ca.reasons()).toEqual(['certificate has expired']);
  });
});

describe('errors retrying cannot fix wait the longest backoff, not the normal schedule', () => {
  // renewal.retryMinMs is 1 s here: the normal schedule would come back within seconds.
  const longest = DEFAULT_RENEWAL_POLICY.retryMaxMs;

  it('NEW_TOKEN_REQUIRED (renewal refused, no new token): retryable false, next try after retryMaxMs', async () => {
    let offset = 0;
    const clock: Clock = { ...systemClock, now: () => Date.now() + offset };
    const s = await setup({ ca: { now: clock.now, allowRenewalAfterExpiry: false }, clock });
    await s.manager.start();
    await s.manager.ready();
    offset = 25 * 3_600_000;
    const failed = nextEvent(s.manager, 'renewalFailed');
    await expect(s.manager.renewNow('api')).rejects.toMatchObject({ code: 'NEW_TOKEN_REQUIRED' });
    const { error, retryAt } = await failed;
    expect(error.details.retryable).toBe(false);
    expect(isRetryable(error)).toBe(false);
    expect(retryAt.getTime() - clock.now()).toBeGreaterThan(longest - 60_000);
  });

  it('TOKEN_ALREADY_USED (a spent token, nothing stored): retryable false, next try after retryMaxMs', async () => {
    const first = await setup();
    await first.manager.start();
    await first.manager.ready();
    await first.manager.stop();
    for (const key of await first.store.list('certificates')) await first.store.delete(key);
    const again = await setup({ existingCa: first.ca, store: first.store, token: first.token });
    const failed = nextEvent(again.manager, 'renewalFailed');
    await again.manager.start();
    const { error, retryAt } = await failed;
    expect(error.code).toBe('TOKEN_ALREADY_USED');
    expect(error.details.retryable).toBe(false);
    expect(retryAt.getTime() - Date.now()).toBeGreaterThan(longest - 60_000);
  });
});

describe('the CA failing at renewal time keeps the old certificate', () => {
  it('CA down: renewal fails, the old certificate is served, and it is renewed once the CA is back', async () => {
    const s = await setup();
    await s.manager.start();
    await s.manager.ready();
    const port = await serve(s.manager);
    const before = served(s);
    await s.ca.stop();
    const failed = nextEvent(s.manager, 'renewalFailed');
    await expect(s.manager.renewNow('api')).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    expect((await failed).error.code).toBe('ISSUER_UNAVAILABLE');
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(before);
    const renewed = nextEvent(s.manager, 'renewed', 10_000);
    await s.ca.listen();
    expect((await renewed).previousSerial).toBe(before);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(served(s));
  });

  it.each<Fault>(['garbage', 'html', 'truncated'])(
    'CA answering %s: a typed error, nothing lost, renewed on the retry',
    async (fault) => {
      const s = await setup();
      await s.manager.start();
      await s.manager.ready();
      const port = await serve(s.manager);
      const before = served(s);
      const pointer = await s.store.get(layout.certificate(s.issuer.id, 'api').current);
      s.ca.faults.set('/1.0/renew', fault);
      const failed = nextEvent(s.manager, 'renewalFailed');
      await expect(s.manager.renewNow('api')).rejects.toMatchObject({ code: 'ISSUER_FAILED' });
      expect((await failed).error).toMatchObject({
        code: 'ISSUER_FAILED',
        message: expect.stringMatching(/answered/),
      });
      expect(served(s)).toBe(before);
      expect((await handshake(port, { servername: 'localhost' })).serial).toBe(before);
      expect(await s.store.get(layout.certificate(s.issuer.id, 'api').current)).toEqual(pointer);
      const renewed = nextEvent(s.manager, 'renewed', 10_000);
      s.ca.faults.delete('/1.0/renew');
      expect((await renewed).previousSerial).toBe(before);
    },
  );

  it('an HTML page at enrollment does not spend the token: the retry enrolls with it', async () => {
    const ca = await FakeStepCa.start();
    cleanup.push(() => ca.stop());
    ca.faults.set('/1.0/sign', 'html');
    const s = await setup({ existingCa: ca });
    const failed = nextEvent(s.manager, 'renewalFailed');
    await s.manager.start();
    expect((await failed).error.code).toBe('ISSUER_FAILED');
    const obtained = nextEvent(s.manager, 'obtained', 10_000);
    ca.faults.delete('/1.0/sign');
    await obtained;
    expect(ca.log.filter((e) => e.path === '/1.0/sign' && e.status === 201)).toHaveLength(1);
  });
});

describe('single use across restarts, revocation and a new token', () => {
  it('a restart with the same token and a valid stored certificate does not present the token again', async () => {
    const first = await setup();
    await first.manager.start();
    await first.manager.ready();
    await first.manager.stop();
    const second = await setup({ existingCa: first.ca, store: first.store, token: first.token });
    const loaded = nextEvent(second.manager, 'loaded');
    await second.manager.start();
    expect((await loaded).serial).toBe(served(first));
    // Even with the certificate gone, the spent token is not presented again.
    for (const key of await first.store.list('certificates')) await first.store.delete(key);
    await second.manager.stop();
    const third = await setup({ existingCa: first.ca, store: first.store, token: first.token });
    const failed = nextEvent(third.manager, 'renewalFailed');
    await third.manager.start();
    expect((await failed).error.code).toBe('TOKEN_ALREADY_USED');
    expect(first.ca.requests('/1.0/sign')).toBe(1);
  });

  it('revoked: renewal is refused until a new token file arrives, which re-enrolls at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-secret-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'token');
    const ca = await FakeStepCa.start();
    cleanup.push(() => ca.stop());
    writeFileSync(file, await mint(ca, { subject: 'localhost', sans: names }));
    const s = await setup({ existingCa: ca, issuer: { token: { file } } });
    await s.manager.start();
    await s.manager.ready();
    const revokedSerial = served(s)!;
    const failed = nextEvent(s.manager, 'renewalFailed');
    // Revoked, but no replacement: revoke() says so (the revoked certificate is still served).
    await expect(s.manager.revoke('api', 'keyCompromise')).rejects.toMatchObject({
      code: 'NEW_TOKEN_REQUIRED',
    });
    expect(ca.revoked.get(BigInt(`0x${revokedSerial}`).toString(10))).toBe(1);
    expect((await failed).error.code).toBe('NEW_TOKEN_REQUIRED');
    expect(ca.reasons()).toContain('certificate has been revoked');
    const stop = s.issuer.watchToken(() => void s.manager.renewNow('api').catch(() => {}));
    cleanup.push(stop);
    const renewed = nextEvent(s.manager, 'renewed', 10_000);
    writeFileSync(file, await mint(ca, { subject: 'localhost', sans: names }));
    expect((await renewed).previousSerial).toBe(revokedSerial);
    expect(ca.log.filter((e) => e.path === '/1.0/sign' && e.status === 201)).toHaveLength(2);
  });
});
