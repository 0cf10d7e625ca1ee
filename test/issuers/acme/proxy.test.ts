// What Pebble 2.4.0 cannot show by itself — ARI, `replaces`, profiles, rate limits with
// Retry-After, a CA answering garbage — through a faithful proxy in front of a real Pebble.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Dns01Solver, type DnsProvider } from '../../../src/challenges/dns-01.js';
import { systemClock } from '../../../src/clock.js';
import { createCsr } from '../../../src/crypto/csr.js';
import { parseCertificates } from '../../../src/crypto/inspect.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { MAX_RETRY_AFTER_MS } from '../../../src/issuers/acme/transport.js';
import { InternalCA } from '../../../src/issuers/internal-ca.js';
import { silentLogger } from '../../../src/logger.js';
import { createCertificateManager } from '../../../src/manager/manager.js';
import { DEFAULT_RENEWAL_POLICY } from '../../../src/manager/policy.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';
import {
  type AcmeProxy,
  certIdOf,
  type IssuedCertificateFacts,
  type Problem,
  startAcmeProxy,
} from '../../support/acme-proxy.js';
import { nextEvent } from '../../support/events.js';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';
import { type Rig, rig } from './support.js';

const ACME = 'urn:ietf:params:acme:error:';
/** The proxy's own default: from 2/3 to 3/4 of the lifetime, far ahead for Pebble's 5 years. */
const defaultWindow = (cert: IssuedCertificateFacts) => {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  const at = (fraction: number) => new Date(cert.notBefore.getTime() + lifetime * fraction);
  return { start: at(2 / 3), end: at(3 / 4) };
};
let pebble: Pebble;
let proxy: AcmeProxy;
const rigs: Rig[] = [];

/**
 * Records when (on the manager's clock) the manager asks the issuer for a renewal window.
 * `answered(n)` resolves once the n-th answer has settled, and with it the manager's handling of
 * it (its continuation was registered first, and runs to the end without waiting).
 */
function spyOnWindows(r: Rig, clock: FakeClock) {
  const at: number[] = [];
  const answers: Promise<unknown>[] = [];
  const waiting: (() => void)[] = [];
  const renewalWindow = r.issuer.renewalWindow.bind(r.issuer);
  r.issuer.renewalWindow = (certificate, context) => {
    at.push(clock.now());
    const answer = renewalWindow(certificate, context);
    answers.push(answer.catch(() => {}));
    for (const wake of waiting.splice(0)) wake();
    return answer;
  };
  return {
    at,
    async answered(n: number): Promise<void> {
      while (answers.length < n) await new Promise<void>((wake) => waiting.push(wake));
      await answers[n - 1];
    },
  };
}

describePebble('ACME through a proxy: ARI, replaces, profiles, rate limits, garbage', () => {
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' } });
    proxy = await startAcmeProxy({ upstream: pebble });
  }, 30_000);
  afterAll(async () => {
    await proxy?.close();
    await pebble?.stop();
  });
  beforeEach(() => {
    proxy.reset();
    proxy.setRenewalInfo(false);
    proxy.setProfiles(undefined);
    proxy.setCheckReplaces(false);
    proxy.setDefaultWindow(defaultWindow);
  });
  afterEach(async () => {
    for (const r of rigs.splice(0)) await r.close();
  });

  async function up(names: string[], issuer: Parameters<typeof rig>[1]['issuer'] = {}) {
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names,
      challenges: ['http-01'],
      issuer,
    });
    rigs.push(r);
    await r.manager.start();
    await r.manager.ready();
    return r;
  }

  it('ARI: renews at a time inside the CA’s suggested window and sends `replaces`', async () => {
    proxy.setRenewalInfo(true);
    // The window is measured from when the CA serves it (not from when the test began: a loaded
    // machine may take seconds to obtain the first certificate), and only the first certificate
    // gets one (the renewed one keeps the lifetime rule, so it is not renewed again at once).
    let first: { serialHex: string; start: Date; end: Date } | undefined;
    proxy.setDefaultWindow((cert) => {
      if (first && first.serialHex !== cert.serialHex) return null;
      const served = Date.now();
      first ??= { serialHex: cert.serialHex, start: new Date(served + 3_000), end: new Date(served + 4_000) };
      return { start: first.start, end: first.end, retryAfterSeconds: 3600 };
    });
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['ari.certkeeper.test'],
      challenges: ['http-01'],
    });
    rigs.push(r);
    // What the schedule said when the renewal began: read at that moment, not after a sleep.
    let scheduled: { at: number; reason: string } | undefined;
    r.manager.on('obtaining', (e) => {
      if (e.reason === 'missing' || scheduled) return;
      scheduled = { at: r.manager.status()[0]!.nextRenewalAt!.getTime(), reason: e.reason };
    });
    const renewed = nextEvent(r.manager, 'renewed', 30_000);
    await r.manager.start();
    await r.manager.ready();
    const old = r.manager.certificate('web')!;
    const id = certIdOf(old.chainPem);

    const event = await renewed;
    expect(proxy.renewalInfoRequests).toContain(id);
    expect(event.previousSerial).toBe(old.serial);
    expect(scheduled?.reason).toBe('renewal');
    expect(scheduled!.at).toBeGreaterThanOrEqual(first!.start.getTime());
    expect(scheduled!.at).toBeLessThanOrEqual(first!.end.getTime());
    // Not before the window opened.
    expect(Date.now()).toBeGreaterThanOrEqual(first!.start.getTime());
    const order = proxy.orders.at(-1)!;
    expect(order.replaces).toBe(id);
    expect(order.status).toBe(201);
  }, 40_000);

  it.each<[string, Problem]>([
    ['409 alreadyReplaced', { status: 409, type: `${ACME}alreadyReplaced`, detail: 'already replaced' }],
    ['409 conflict (older Boulder)', { status: 409, type: `${ACME}conflict`, detail: 'already replaced' }],
    [
      '403 after an account change',
      {
        status: 403,
        type: `${ACME}unauthorized`,
        detail: 'requester account did not request the certificate being replaced by this order',
      },
    ],
    [
      '404 for a serial the CA does not know',
      {
        status: 404,
        type: `${ACME}malformed`,
        detail: 'request included `replaces` field, but no current certificate with serial "01" exists',
      },
    ],
    [
      '400 for another CA’s issuer key',
      {
        status: 400,
        type: `${ACME}malformed`,
        detail: 'path contained an Authority Key Identifier that did not match a known issuer',
      },
    ],
  ])(
    'ARI: a CA refusing `replaces` with %s gets a plain order at once, same account',
    async (_name, problem) => {
      proxy.setRenewalInfo(true);
      const r = await up([`refused-${problem.status}-${problem.type.length}.certkeeper.test`]);
      const id = certIdOf(r.manager.certificate('web')!.chainPem);
      proxy.reset();
      // The CA refuses it every time: sending it again (or a new account sending it) cannot help.
      proxy.rejectReplaces(problem, 10);
      await r.manager.renewNow('web');
      expect(r.manager.status()[0]!.lastError).toBeNull();
      expect(proxy.orders).toHaveLength(2);
      expect(proxy.orders[0]).toMatchObject({ replaces: id, rejectedWith: problem.type });
      expect(proxy.orders[1]!.replaces).toBeUndefined();
      expect(proxy.orders[1]!.status).toBe(201);
      // The account was not taken for the culprit: no registration, no key change.
      expect(proxy.timesOf('newAccount')).toEqual([]);
      // The refusal is remembered for that certificate; the new one is named in the next renewal.
      const renewedId = certIdOf(r.manager.certificate('web')!.chainPem);
      proxy.reset();
      await r.manager.renewNow('web');
      expect(proxy.orders.map((o) => o.replaces)).toEqual([renewedId]);
    },
  );

  it('ARI: after an issuer change, `replaces` never names the other CA’s certificate and the ACME CA issues', async () => {
    proxy.setRenewalInfo(true);
    proxy.setCheckReplaces(true);
    const store = new MemoryStore();
    const internal = new InternalCA();
    const before = createCertificateManager({
      store,
      issuer: internal,
      logger: silentLogger,
      certificates: [{ id: 'web', names: ['switch.certkeeper.test'] }],
    });
    await before.start();
    await before.ready();
    const internalSerial = before.certificate('web')!.serial;
    await before.stop();

    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['switch.certkeeper.test'],
      challenges: ['http-01'],
      store,
      issuersAfter: [internal],
    });
    rigs.push(r);
    await r.manager.start();
    await r.manager.ready();
    expect(r.manager.certificate('web')!.serial).toBe(internalSerial);
    proxy.reset();
    await r.manager.renewNow('web');
    // Renewed by the ACME CA (the first issuer), not by falling through to the internal one.
    expect(r.manager.status()[0]!.issuer).toBe(r.issuer.id);
    expect(proxy.orders.filter((o) => o.rejectedWith !== undefined)).toEqual([]);
    expect(proxy.orders.at(-1)).toMatchObject({ status: 201 });
    expect(proxy.orders.at(-1)!.replaces).toBeUndefined();
  });

  it('ARI: an order that failed after naming the certificate is followed by a plain order (409 alreadyReplaced from a checking CA)', async () => {
    proxy.setRenewalInfo(true);
    proxy.setCheckReplaces(true);
    let failValidation = false;
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['again.certkeeper.test'],
      challenges: ['http-01'],
      httpHandler: (handler) => (req, res) => {
        if (!failValidation) return handler(req, res);
        res.statusCode = 404;
        res.end();
      },
    });
    rigs.push(r);
    await r.manager.start();
    await r.manager.ready();
    const id = certIdOf(r.manager.certificate('web')!.chainPem);
    proxy.reset();
    failValidation = true;
    await expect(r.manager.renewNow('web')).rejects.toMatchObject({ code: 'CHALLENGE_FAILED' });
    failValidation = false;
    await r.manager.renewNow('web');
    expect(proxy.orders.map((o) => [o.replaces, o.rejectedWith, o.status])).toEqual([
      [id, undefined, 201],
      [id, `${ACME}alreadyReplaced`, 409],
      [undefined, undefined, 201],
    ]);
  });

  it('ARI: the window is polled on the CA’s Retry-After, and a window moved into the past renews at that poll', async () => {
    proxy.setRenewalInfo(true);
    proxy.setDefaultWindow((cert) => ({ ...defaultWindow(cert), retryAfterSeconds: 120 }));
    const clock = new FakeClock();
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['drill.certkeeper.test'],
      challenges: ['http-01'],
      manager: { clock, reconcileIntervalMs: 0 },
    });
    rigs.push(r);
    const asked = spyOnWindows(r, clock);
    await r.manager.start();
    await clock.advance(1); // the first attempt is due at once, on the manager's clock
    await r.manager.ready();
    const old = r.manager.certificate('web')!;
    const id = certIdOf(old.chainPem);
    // The window is asked for once the certificate is served; its answer is applied when it settles.
    await asked.answered(1);
    expect(proxy.renewalInfoRequests).toEqual([id]);
    const answeredAt = asked.at[0]!;

    // The mass-revocation drill: the CA moves the window into the past.
    const now = clock.now();
    proxy.setWindow(id, {
      start: new Date(now - 7_200_000),
      end: new Date(now - 3_600_000),
      retryAfterSeconds: 120,
    });
    await clock.advance(119_000);
    expect(asked.at).toHaveLength(1);
    const renewed = nextEvent(r.manager, 'renewed', 15_000);
    await clock.advance(1_000);
    expect(asked.at).toHaveLength(2);
    expect(asked.at[1]! - answeredAt).toBeGreaterThanOrEqual(120_000);
    // The answer makes the renewal due at once (on the manager's clock: the next timer, now).
    await asked.answered(2);
    await clock.advance(1);
    expect((await renewed).previousSerial).toBe(old.serial);
    expect(proxy.orders.at(-1)).toMatchObject({ replaces: id, status: 201 });
  }, 30_000);

  it('ARI: a Retry-After below a minute is polled after a minute, not in a loop', async () => {
    proxy.setRenewalInfo(true);
    proxy.setDefaultWindow((cert) => ({ ...defaultWindow(cert), retryAfterSeconds: 1 }));
    const clock = new FakeClock();
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['floor.certkeeper.test'],
      challenges: ['http-01'],
      manager: { clock, reconcileIntervalMs: 0 },
    });
    rigs.push(r);
    const asked = spyOnWindows(r, clock);
    await r.manager.start();
    await clock.advance(1); // the first attempt is due at once, on the manager's clock
    await r.manager.ready();
    await asked.answered(1);
    await clock.advance(59_000);
    expect(asked.at).toHaveLength(1);
    await clock.advance(1_000);
    expect(asked.at).toHaveLength(2);
    await asked.answered(2);
    expect(asked.at[1]! - asked.at[0]!).toBeGreaterThanOrEqual(60_000);
  }, 30_000);

  it('without ARI: no renewalInfo requests, no `replaces`, the lifetime rule', async () => {
    const r = await up(['noari.certkeeper.test']);
    await r.manager.renewNow('web');
    expect(proxy.renewalInfoRequests).toEqual([]);
    expect(proxy.orders.every((o) => o.replaces === undefined)).toBe(true);
  });

  it('profiles: sent when advertised, and kept on every renewal, a refused `replaces` included', async () => {
    proxy.setProfiles({ classic: 'the usual', tlsserver: '45 days', shortlived: 'about 6 days' });
    proxy.setRenewalInfo(true);
    const r = await up(['profile.certkeeper.test'], { profile: 'tlsserver' });
    await r.manager.renewNow('web');
    proxy.rejectReplaces();
    await r.manager.renewNow('web');
    expect(proxy.orders).toHaveLength(4);
    expect(proxy.orders.map((o) => o.profile)).toEqual(['tlsserver', 'tlsserver', 'tlsserver', 'tlsserver']);
    expect(proxy.orders[2]!.rejectedWith).toBe(`${ACME}alreadyReplaced`);
  });

  it("profiles: a request naming its own profile is ordered under it, not under the issuer's", async () => {
    proxy.setProfiles({ classic: 'the usual', tlsserver: '45 days', shortlived: 'about 6 days' });
    const r = await up(['own-profile.certkeeper.test'], { profile: 'tlsserver' });
    const key = await PrivateKey.generate('ec-p256');
    const names = ['own-profile-2.certkeeper.test'];
    const context = {
      store: r.store,
      clock: systemClock,
      logger: silentLogger,
      signal: new AbortController().signal,
    };
    const request = { id: 'other', names, purpose: 'server' as const, keyType: 'ec-p256' as const, key };
    await r.issuer.issue(
      { ...request, csr: await createCsr({ key, names }), profile: 'shortlived' },
      context,
    );
    expect(proxy.orders.map((o) => o.profile)).toEqual(['tlsserver', 'shortlived']);
  });

  it('profiles: a certificate configured with its own profile is ordered and renewed under it, the others under the issuer’s', async () => {
    proxy.setProfiles({ classic: 'the usual', tlsserver: '45 days', shortlived: 'about 6 days' });
    const names = ['short.certkeeper.test'];
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names,
      challenges: ['http-01'],
      issuer: { profile: 'tlsserver' },
      manager: {
        certificates: [
          { id: 'web', names, profile: 'shortlived' },
          { id: 'other', names: ['long.certkeeper.test'] },
        ],
      },
    });
    rigs.push(r);
    await r.manager.start();
    await r.manager.ready();
    await r.manager.renewNow('web');
    const byName = (name: string) =>
      proxy.orders.filter((o) => JSON.stringify(o.identifiers).includes(name)).map((o) => o.profile);
    expect(byName('short.certkeeper.test')).toEqual(['shortlived', 'shortlived']);
    expect(byName('long.certkeeper.test')).toEqual(['tlsserver']);
  });

  it.each([
    [
      'advertises others',
      { classic: 'the usual', shortlived: 'about 6 days' },
      /it offers classic, shortlived/,
    ],
    ['advertises none', undefined, /it advertises no profiles/],
  ])(
    'profiles: one the CA %s fails the first order with INVALID_OPTION naming it, and orders nothing',
    async (_name, offered, why) => {
      proxy.setProfiles(offered);
      const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
        names: [`unoffered-${offered ? 'some' : 'none'}.certkeeper.test`],
        challenges: ['http-01'],
        issuer: { profile: 'tlsserver' },
      });
      rigs.push(r);
      const failed = nextEvent(r.manager, 'renewalFailed');
      await r.manager.start();
      const { error } = await failed;
      expect(error).toMatchObject({
        code: 'INVALID_OPTION',
        details: { option: 'profile', retryable: false },
      });
      expect(error.message).toMatch(/profile "tlsserver" is not offered/);
      expect(error.message).toMatch(why);
      expect(proxy.orders).toEqual([]);
      expect(r.manager.certificate('web')).toBeNull();
    },
  );

  it('profiles: an IP address gets `shortlived` when the CA offers it, on every renewal; otherwise no profile', async () => {
    proxy.setProfiles({ classic: 'the usual', shortlived: 'about 6 days' });
    const first = await up(['127.0.0.1']);
    await first.manager.renewNow('web');
    expect(proxy.orders.map((o) => [o.identifiers, o.profile, o.status])).toEqual([
      [[{ type: 'ip', value: '127.0.0.1' }], 'shortlived', 201],
      [[{ type: 'ip', value: '127.0.0.1' }], 'shortlived', 201],
    ]);
    // A DNS name alone is left to the CA's default profile.
    await first.close();
    rigs.splice(rigs.indexOf(first), 1);
    proxy.reset();
    await up(['dnsname.certkeeper.test']);
    expect(proxy.orders.map((o) => o.profile)).toEqual([undefined]);
  });

  it('429 with Retry-After: fails the attempt, waits that long, never hammers', async () => {
    const r = await up(['limited.certkeeper.test']);
    const serial = r.manager.status()[0]!.serial;
    proxy.reset();
    proxy.inject('newOrder', { kind: 'rateLimited', retryAfterSeconds: 2, detail: 'too many new orders' }, 1);
    const failed = nextEvent(r.manager, 'renewalFailed');
    const renewal = r.manager.renewNow('web');
    const failure = await failed;
    expect(failure.error.code).toBe('RATE_LIMITED');
    await expect(renewal).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(failure.error.details).toMatchObject({
      type: 'urn:ietf:params:acme:error:rateLimited',
      retryAfterMs: 2000,
    });
    expect(failure.retryAt.getTime() - Date.now()).toBeGreaterThan(1_500);
    expect(failure.servingSerial).toBe(serial);
    expect(r.manager.status()[0]!.lastError).toMatchObject({ code: 'RATE_LIMITED' });
    // The lifecycle comes back by itself, after the Retry-After and not before.
    await nextEvent(r.manager, 'renewed', 10_000);
    const times = proxy.timesOf('newOrder');
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(2_000);
  }, 20_000);

  it.each([
    ['ten years', 315_360_000],
    ['more than a Date holds', 1e20],
  ])(
    'a Retry-After of %s: the next attempt stays within the cap, at a valid date',
    async (_name, seconds) => {
      const r = await up([`far-${String(seconds).length}.certkeeper.test`]);
      proxy.reset();
      proxy.inject('newOrder', { kind: 'rateLimited', retryAfterSeconds: seconds }, 1);
      const failed = nextEvent(r.manager, 'renewalFailed');
      await expect(r.manager.renewNow('web')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
      const failure = await failed;
      expect(failure.error.details.retryAfterMs).toBe(MAX_RETRY_AFTER_MS);
      expect(failure.retryAt.getTime()).toBeLessThanOrEqual(Date.now() + MAX_RETRY_AFTER_MS);
      const next = r.manager.status()[0]!.nextRenewalAt!;
      expect(Number.isNaN(next.getTime())).toBe(false);
      expect(next.getTime()).toBeLessThanOrEqual(Date.now() + MAX_RETRY_AFTER_MS);
    },
  );

  it('a problem a new order meets again (rejectedIdentifier) waits the longest backoff, not seconds', async () => {
    const r = await up(['policy.certkeeper.test']);
    proxy.inject(
      'newOrder',
      { kind: 'problem', status: 400, type: `${ACME}rejectedIdentifier`, detail: 'policy forbids this name' },
      1,
    );
    const failed = nextEvent(r.manager, 'renewalFailed');
    await expect(r.manager.renewNow('web')).rejects.toMatchObject({ code: 'ACME_PROBLEM' });
    const failure = await failed;
    expect(failure.error.details.retryable).toBe(false);
    // retryMinMs is 1 s in this rig: the normal schedule would come back within seconds.
    expect(failure.retryAt.getTime() - Date.now()).toBeGreaterThan(
      DEFAULT_RENEWAL_POLICY.retryMaxMs - 60_000,
    );
  });

  it('error messages keep the CA’s origin, port included (only the random path is redacted)', async () => {
    const r = await up(['origin.certkeeper.test']);
    proxy.inject('finalize', { kind: 'unavailable', retryAfterSeconds: null }, 1);
    const failed = nextEvent(r.manager, 'renewalFailed');
    await expect(r.manager.renewNow('web')).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    const { error } = await failed;
    expect(error.message).toContain(`POST ${proxy.url}`);
    expect(error.message).not.toContain(':[redacted]');
    expect(r.manager.status()[0]!.lastError!.message).toContain(proxy.url);
  });

  it('ARI: a window after notAfter is ignored; one running past it is cut short of it', async () => {
    proxy.setRenewalInfo(true);
    proxy.setDefaultWindow(() => null);
    const r = await up(['late.certkeeper.test']);
    const { chainPem } = r.manager.certificate('web')!;
    const { info } = parseCertificates(chainPem)[0]!;
    const id = certIdOf(chainPem);
    const context = {
      store: r.store,
      clock: systemClock,
      logger: silentLogger,
      signal: new AbortController().signal,
    };
    const ask = () => r.issuer.renewalWindow({ ...info, chainPem }, context);
    const at = (ms: number) => new Date(ms);
    const notAfter = info.notAfter.getTime();
    const hour = 3_600_000;
    proxy.setWindow(id, { start: at(notAfter + hour), end: at(notAfter + 2 * hour) });
    expect(await ask()).toBeNull();
    proxy.setWindow(id, { start: at(notAfter - hour), end: at(notAfter + hour) });
    expect(await ask()).toBeNull();
    const start = info.notBefore.getTime() + Math.floor(info.lifetimeMs / 2);
    proxy.setWindow(id, { start: at(start), end: at(notAfter + hour) });
    const cut = (await ask())!;
    expect(cut.start.getTime()).toBeLessThanOrEqual(start);
    expect(cut.end.getTime()).toBeGreaterThan(cut.start.getTime());
    expect(cut.end.getTime()).toBeLessThanOrEqual(notAfter - info.lifetimeMs / 10);
    // A window well inside the lifetime is the CA's to choose, and kept as given.
    const end = start + hour;
    proxy.setWindow(id, { start: at(start), end: at(end) });
    const kept = (await ask())!;
    expect([kept.start.getTime(), kept.end.getTime()]).toEqual([start, end]);
  });

  it('503 with Retry-After is ISSUER_UNAVAILABLE and honoured the same way', async () => {
    const r = await up(['maint.certkeeper.test']);
    proxy.reset();
    proxy.inject('newOrder', { kind: 'unavailable', retryAfterSeconds: 1 }, 1);
    const failed = nextEvent(r.manager, 'renewalFailed');
    const renewal = r.manager.renewNow('web');
    const failure = await failed;
    expect(failure.error.code).toBe('ISSUER_UNAVAILABLE');
    await expect(renewal).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    expect(failure.error.details.retryAfterMs).toBe(1000);
  });

  it('badNonce is retried inside the attempt', async () => {
    const r = await up(['nonce.certkeeper.test']);
    proxy.inject(
      'newOrder',
      { kind: 'problem', status: 400, type: 'urn:ietf:params:acme:error:badNonce' },
      2,
    );
    await r.manager.renewNow('web');
    expect(r.manager.status()[0]!.lastError).toBeNull();
  });

  it.each([
    ['an HTML page', { kind: 'html' as const }, 'ISSUER_FAILED'],
    ['truncated JSON', { kind: 'truncated' as const }, 'ISSUER_FAILED'],
    ['a dropped connection', { kind: 'reset' as const }, 'ISSUER_UNAVAILABLE'],
  ])('a CA answering %s costs nothing: typed error, certificate kept', async (_name, fault, code) => {
    const r = await up([`garbage-${fault.kind}.certkeeper.test`]);
    const serial = r.manager.status()[0]!.serial;
    proxy.inject('newOrder', fault, 1);
    const failed = nextEvent(r.manager, 'renewalFailed');
    const renewal = r.manager.renewNow('web');
    expect((await failed).error.code).toBe(code);
    await expect(renewal).rejects.toMatchObject({ code });
    expect(r.manager.status()[0]!.serial).toBe(serial);
    expect(r.manager.certificate('web')!.serial).toBe(serial);
  });

  it('an order given up at the issue timeout deactivates its pending authorizations', async () => {
    // A DNS provider whose API never answers: the order waits on it until the attempt times out.
    const hung: DnsProvider = { setTxt: () => new Promise(() => {}), removeTxt: async () => {} };
    const r = await rig({ ...pebble, directoryUrl: proxy.directoryUrl, caPem: proxy.caPem } as Pebble, {
      names: ['stuck.certkeeper.test'],
      challenges: [],
      issuer: { challenges: [new Dns01Solver({ provider: hung, skipPropagationCheck: true })] },
      // One attempt only: later attempts would be other orders with authorizations of their own.
      manager: { issueTimeoutMs: 1_500, renewal: { retryMinMs: 60_000 } },
    });
    rigs.push(r);
    const failed = nextEvent(r.manager, 'renewalFailed', 10_000);
    await r.manager.start();
    expect((await failed).error).toMatchObject({
      code: 'ISSUER_UNAVAILABLE',
      message: expect.stringMatching(/did not answer before the attempt was given up/),
    });
    const authz = () =>
      proxy.requests.filter((q) => q.route === 'authorization' && q.method === 'POST' && q.status === 200);
    // The order read its authorization once; abandoning it reads it again and deactivates it
    // (acme-client's deactivateAuthorization), sent with a signal of their own since the
    // attempt's has fired. With the attempt's signal nothing would leave the process.
    const deadline = Date.now() + 5_000;
    while (authz().length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    const paths = authz().map((q) => q.path);
    expect(paths).toHaveLength(3);
    expect(new Set(paths).size).toBe(1);
  });
});
