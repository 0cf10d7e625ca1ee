// What Pebble 2.4.0 cannot show by itself — ARI, `replaces`, profiles, rate limits with
// Retry-After, a CA answering garbage — through a faithful proxy in front of a real Pebble.
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Dns01Solver, type DnsProvider } from '../../../src/challenges/dns-01.js';
import { systemClock } from '../../../src/clock.js';
import { parseCertificates } from '../../../src/crypto/inspect.js';
import { MAX_RETRY_AFTER_MS } from '../../../src/issuers/acme/transport.js';
import { silentLogger } from '../../../src/logger.js';
import { DEFAULT_RENEWAL_POLICY } from '../../../src/manager/policy.js';
import { type AcmeProxy, certIdOf, startAcmeProxy } from '../../support/acme-proxy.js';
import { nextEvent } from '../../support/events.js';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';
import { type Rig, rig } from './support.js';

const ACME = 'urn:ietf:params:acme:error:';
let pebble: Pebble;
let proxy: AcmeProxy;
const rigs: Rig[] = [];

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

  it('ARI: drops `replaces` and orders again when the CA refuses it', async () => {
    proxy.setRenewalInfo(true);
    proxy.setDefaultWindow(() => null);
    const r = await up(['replaces.certkeeper.test']);
    const id = certIdOf(r.manager.certificate('web')!.chainPem);
    proxy.rejectReplaces();
    await r.manager.renewNow('web');
    expect(r.manager.status()[0]!.lastError).toBeNull();
    const renewals = proxy.orders.slice(-2);
    expect(renewals[0]).toMatchObject({
      replaces: id,
      rejectedWith: 'urn:ietf:params:acme:error:alreadyReplaced',
    });
    expect(renewals[1]!.replaces).toBeUndefined();
    expect(renewals[1]!.status).toBe(201);
  });

  it('without ARI: no renewalInfo requests, no `replaces`, the lifetime rule', async () => {
    const r = await up(['noari.certkeeper.test']);
    await r.manager.renewNow('web');
    expect(proxy.renewalInfoRequests).toEqual([]);
    expect(proxy.orders.every((o) => o.replaces === undefined)).toBe(true);
  });

  it('profiles: sent when the directory advertises them, left out (with a warning) otherwise', async () => {
    proxy.setProfiles({ classic: 'the usual', shortlived: 'about 6 days' });
    const first = await up(['profile.certkeeper.test'], { profile: 'shortlived' });
    expect(proxy.orders.at(-1)!.profile).toBe('shortlived');
    // One rig at a time: both would listen on Pebble's ports.
    await first.close();
    rigs.splice(rigs.indexOf(first), 1);
    proxy.setProfiles(undefined);
    const r = await up(['noprofile.certkeeper.test'], { profile: 'shortlived' });
    expect(r.manager.status()[0]!.state).toBe('valid');
    expect(proxy.orders.at(-1)!.profile).toBeUndefined();
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
