// Scheduling decisions, driven by a fake clock over days of certificate lifetime; issuance,
// storage and validation stay real.
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateInfo } from '../../src/crypto/inspect.js';
import { CertkeeperError } from '../../src/errors.js';
import type { RenewalWindow } from '../../src/issuers/issuer.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { DEFAULT_RENEWAL_POLICY } from '../../src/manager/policy.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const managers: CertificateManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
});

async function setup(lifetimeMs: number, count = 1, reconcileIntervalMs = 0, revocationCheck = false) {
  const clock = new FakeClock();
  const issuer = new SwitchableIssuer({ lifetimeMs, intermediateLifetimeMs: 3 * 365 * DAY });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    clock,
    logger: quiet,
    reconcileIntervalMs,
    revocationCheck,
    certificates: Array.from({ length: count }, (_, i) => ({ id: `c${i}`, names: [`c${i}.test`] })),
  });
  managers.push(manager);
  await manager.start();
  // Obtaining is due "now": on a fake clock, now only happens when the test moves it.
  await clock.advance(0);
  await manager.ready();
  // Let the first obtain finish its bookkeeping (events after the swap).
  while (manager.status().some((s) => s.renewing)) await new Promise((r) => setTimeout(r, 5));
  return { clock, issuer, manager };
}

const status = (m: CertificateManager, i = 0) => m.status()[i]!;

describe('renewal schedule', () => {
  it('keeps one timer for fifty certificates (plus one for the periodic reconcile, one for the CRL watch)', async () => {
    expect((await setup(DAY, 50)).clock.pending).toBe(1);
    expect((await setup(DAY, 50, 60_000)).clock.pending).toBe(2);
    expect((await setup(DAY, 50, 60_000, true)).clock.pending).toBe(3);
  });

  it.each([
    ['90 days', 90 * DAY],
    ['6 days', 6 * DAY],
    ['24 hours', DAY],
  ])('renews a %s certificate at 2/3 of its lifetime, minus at most 5 % jitter', async (_name, lifetime) => {
    const { clock, manager } = await setup(lifetime);
    const s = status(manager);
    const start = s.notBefore!.getTime();
    const due = s.nextRenewalAt!.getTime();
    const actualLifetime = s.notAfter!.getTime() - start;
    expect(due).toBeLessThanOrEqual(start + (actualLifetime * 2) / 3);
    expect(due).toBeGreaterThanOrEqual(start + actualLifetime * (2 / 3 - 0.05));

    const serial = s.serial;
    await clock.advance(due - clock.now() - 1_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(status(manager).serial).toBe(serial);

    const renewed = nextEvent(manager, 'renewed');
    const obtaining = nextEvent(manager, 'obtaining');
    await clock.advance(2_000);
    expect((await obtaining).reason).toBe('renewal');
    expect((await renewed).previousSerial).toBe(serial);
  });

  it('spreads a fleet: jitter differs between certificates', async () => {
    const { manager } = await setup(90 * DAY, 20);
    const offsets = manager.status().map((s) => s.nextRenewalAt!.getTime() - s.notBefore!.getTime());
    expect(new Set(offsets).size).toBeGreaterThan(15);
  });

  it('backs off after failures while the current certificate keeps being served', async () => {
    const { clock, issuer, manager } = await setup(90 * DAY);
    const serving = status(manager).serial;
    issuer.fault = 'down';
    const failures: ManagerEvents['renewalFailed'][0][] = [];
    manager.on('renewalFailed', (e) => failures.push(e));
    await clock.advance(status(manager).nextRenewalAt!.getTime() - clock.now());
    for (let attempt = 1; attempt <= 6; attempt++) {
      while (failures.length < attempt) await new Promise((r) => setTimeout(r, 5));
      const failure = failures[attempt - 1]!;
      expect(failure.attempt).toBe(attempt);
      expect(failure.servingSerial).toBe(serving);
      await clock.advance(failure.retryAt.getTime() - clock.now());
    }
    const gaps = failures.slice(1).map((f, i) => f.retryAt.getTime() - failures[i]!.retryAt.getTime());
    const delays = failures.map(
      (f, i) => f.retryAt.getTime() - (i === 0 ? 0 : failures[i - 1]!.retryAt.getTime()),
    );
    // 1, 2, 4, 8, 16, 32 minutes, each ±10 %.
    delays.slice(1).forEach((d, i) => {
      const expected = 60_000 * 2 ** (i + 1);
      expect(d).toBeGreaterThanOrEqual(expected * 0.9 - 1);
      expect(d).toBeLessThanOrEqual(expected * 1.1 + 1);
    });
    expect(gaps.length).toBe(5);
    expect(status(manager)).toMatchObject({
      serial: serving,
      failures: 6,
      lastError: { code: 'ISSUER_UNAVAILABLE' },
    });

    issuer.fault = null;
    const renewed = nextEvent(manager, 'renewed');
    await clock.advance(failures.at(-1)!.retryAt.getTime() - clock.now() + 100 * 60_000);
    await renewed;
    expect(status(manager)).toMatchObject({ failures: 0, lastError: null });
  });

  it('never lets a retry wait past a quarter of the remaining lifetime', async () => {
    const { clock, issuer, manager } = await setup(DAY);
    issuer.fault = 'down';
    const failures: ManagerEvents['renewalFailed'][0][] = [];
    manager.on('renewalFailed', (e) => failures.push(e));
    // Jump close to expiry: 20 minutes left.
    const notAfter = status(manager).notAfter!.getTime();
    clock.set(notAfter - 20 * 60_000);
    await manager.renewNow('c0').catch(() => {});
    for (let i = 0; i < 8; i++) {
      while (failures.length < i + 1) await new Promise((r) => setTimeout(r, 5));
      const f = failures[i]!;
      const remaining = notAfter - clock.now();
      expect(f.retryAt.getTime() - clock.now()).toBeLessThanOrEqual(Math.max(1_000, (remaining / 4) * 1.1));
      await clock.advance(f.retryAt.getTime() - clock.now());
    }
  });

  it.each([
    ['90 days', 90 * DAY, [30 * DAY, 14 * DAY, 7 * DAY]],
    ['24 hours', DAY, [8 * HOUR, (14 / 90) * DAY, (7 / 90) * DAY]],
  ])(
    'warns once per threshold for a %s certificate when renewal keeps failing',
    async (_n, lifetime, before) => {
      const { clock, issuer, manager } = await setup(lifetime);
      issuer.fault = 'down';
      const warnings: ManagerEvents['expiring'][0][] = [];
      manager.on('expiring', (e) => warnings.push(e));
      const notAfter = status(manager).notAfter!.getTime();
      const lifetimeActual = notAfter - status(manager).notBefore!.getTime();
      // Walk to one minute past expiry in steps; retries keep waking the loop meanwhile.
      while (clock.now() < notAfter + 60_000) {
        await clock.advance(Math.min(lifetimeActual / 200, 30 * 60_000));
        // Time only moves on once the failed attempt (real I/O) has rescheduled: on a loaded
        // machine the fake clock would otherwise outrun it and warnings would come late.
        do await new Promise((r) => setTimeout(r, 2));
        while (manager.status()[0]!.renewing);
      }
      // The last wake is due at the last step; let it run.
      while (manager.status()[0]!.renewing) await new Promise((r) => setTimeout(r, 5));
      await clock.advance(0);
      while (manager.status()[0]!.renewing) await new Promise((r) => setTimeout(r, 5));
      expect(warnings.map((w) => w.threshold)).toEqual([30 / 90, 14 / 90, 7 / 90, 0]);
      warnings.slice(0, 3).forEach((w, i) => {
        const scaled = (before[i]! * lifetimeActual) / lifetime;
        // Emitted at the first wake after the threshold: within one step of it.
        expect(w.remainingMs).toBeLessThanOrEqual(scaled);
        expect(w.remainingMs).toBeGreaterThan(
          scaled - Math.min(lifetimeActual / 200, 30 * 60_000) - 6 * 60_000,
        );
      });
      expect(warnings[3]!.remainingMs).toBeLessThanOrEqual(0);
      expect(status(manager).state).toBe('expired');
    },
    60_000,
  );

  it('renews an overdue certificate soon after a long sleep (the wall clock jumped, timers did not fire)', async () => {
    const { clock, manager } = await setup(DAY);
    const serial = status(manager).serial;
    const obtaining: ManagerEvents['obtaining'][0][] = [];
    manager.on('obtaining', (e) => obtaining.push(e));
    const renewed = nextEvent(manager, 'renewed');
    // The host slept through the renewal time and woke after expiry: the wall clock jumped, but
    // timers count the time the process ran, so the renewal timer is still ~16 h away.
    clock.set(status(manager).notAfter!.getTime() + HOUR);
    await clock.advance(60_000);
    expect(obtaining.map((e) => e.reason)).toEqual(['expired']);
    await renewed;
    expect(status(manager).serial).not.toBe(serial);
  });

  it('notices within a minute of process time a wall-clock step that made a renewal due', async () => {
    const { clock, manager } = await setup(90 * DAY);
    const obtaining: ManagerEvents['obtaining'][0][] = [];
    manager.on('obtaining', (e) => obtaining.push(e));
    const due = status(manager).nextRenewalAt!.getTime();
    await clock.advance(HOUR);
    expect(obtaining).toEqual([]);
    // An NTP step forward past the renewal time (the certificate is still valid).
    clock.set(due + 1_000);
    await clock.advance(60_000);
    expect(obtaining.map((e) => e.reason)).toEqual(['renewal']);
    await nextEvent(manager, 'renewed');
  });
});

/** An issuer whose failures and ARI windows the test sets. */
class ScriptedIssuer extends SwitchableIssuer {
  failWith: CertkeeperError | null = null;
  window: ((info: CertificateInfo) => RenewalWindow | null) | null = null;
  windowCalls = 0;
  #windowServed: (() => void) | undefined;

  override async issue(...args: Parameters<SwitchableIssuer['issue']>) {
    if (this.failWith) {
      this.calls++;
      throw this.failWith;
    }
    return super.issue(...args);
  }

  async renewalWindow(info: CertificateInfo): Promise<RenewalWindow | null> {
    this.windowCalls++;
    const window = this.window ? this.window(info) : null;
    queueMicrotask(() => this.#windowServed?.());
    return window;
  }

  /** Resolves once the next window has been handed to the manager and applied. */
  nextWindow(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#windowServed = () => setImmediate(resolve);
    });
  }
}

async function scripted(lifetimeMs: number, window: ScriptedIssuer['window'] = null) {
  const clock = new FakeClock();
  const issuer = new ScriptedIssuer({ lifetimeMs, intermediateLifetimeMs: 3 * 365 * DAY });
  issuer.window = window;
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    clock,
    logger: quiet,
    reconcileIntervalMs: 0,
    certificates: [{ id: 'c0', names: ['c0.test'] }],
  });
  managers.push(manager);
  const applied = issuer.nextWindow();
  await manager.start();
  await clock.advance(0);
  await manager.ready();
  await applied;
  return { clock, issuer, manager };
}

describe('timing from the CA is bounded', () => {
  it.each([
    ['10 years', 315_360_000_000],
    ['beyond what a Date can hold', 1e300],
    ['not a number', Number.NaN],
  ])(
    'a Retry-After of %s keeps the retry within a quarter of the remaining lifetime, with a valid date',
    async (_name, retryAfterMs) => {
      const { clock, issuer, manager } = await scripted(DAY);
      issuer.failWith = new CertkeeperError('RATE_LIMITED', 'slow down', { details: { retryAfterMs } });
      const failures: ManagerEvents['renewalFailed'][0][] = [];
      manager.on('renewalFailed', (e) => failures.push(e));
      await expect(manager.renewNow('c0')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
      expect(failures).toHaveLength(1);
      const retryAt = failures[0]!.retryAt.getTime();
      const notAfter = status(manager).notAfter!.getTime();
      expect(Number.isFinite(retryAt)).toBe(true);
      expect(retryAt).toBeGreaterThan(clock.now());
      expect(retryAt - clock.now()).toBeLessThanOrEqual((notAfter - clock.now()) / 4);
      const next = status(manager).nextRenewalAt!;
      expect(Number.isFinite(next.getTime())).toBe(true);
      expect(next.getTime()).toBeLessThan(notAfter);
    },
  );

  it('a 10-year Retry-After with nothing served yet waits at most the longest backoff', async () => {
    const clock = new FakeClock();
    const issuer = new ScriptedIssuer({ lifetimeMs: DAY });
    issuer.failWith = new CertkeeperError('RATE_LIMITED', 'slow down', {
      details: { retryAfterMs: 315_360_000_000 },
    });
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      clock,
      logger: quiet,
      reconcileIntervalMs: 0,
      certificates: [{ id: 'c0', names: ['c0.test'] }],
    });
    managers.push(manager);
    const failed = nextEvent(manager, 'renewalFailed');
    await manager.start();
    await clock.advance(0);
    const { retryAt } = await failed;
    expect(retryAt.getTime() - clock.now()).toBeLessThanOrEqual(DEFAULT_RENEWAL_POLICY.retryMaxMs);
  });

  it('an ARI window after notAfter does not leave an expired certificate served', async () => {
    const { clock, manager } = await scripted(DAY, (info) => ({
      start: new Date(info.notAfter.getTime() + DAY),
      end: new Date(info.notAfter.getTime() + 2 * DAY),
    }));
    const s = status(manager);
    const notBefore = s.notBefore!.getTime();
    const notAfter = s.notAfter!.getTime();
    const due = s.nextRenewalAt!.getTime();
    // Never past 9/10 of the lifetime: a tenth of it stays for retries.
    expect(due).toBeLessThanOrEqual(notBefore + 0.9 * (notAfter - notBefore));
    const renewed = nextEvent(manager, 'renewed');
    await clock.advance(due - clock.now());
    await renewed;
    expect(clock.now()).toBeLessThan(notAfter);
  });

  it('an ARI window earlier than the lifetime rule is followed (a CA asking for early renewal)', async () => {
    const { manager } = await scripted(90 * DAY, (info) => ({
      start: new Date(info.notBefore.getTime() + 10 * DAY),
      end: new Date(info.notBefore.getTime() + 11 * DAY),
    }));
    const s = status(manager);
    const offset = s.nextRenewalAt!.getTime() - s.notBefore!.getTime();
    expect(offset).toBeGreaterThanOrEqual(10 * DAY - 60_000);
    expect(offset).toBeLessThanOrEqual(11 * DAY);
  });

  it('an ARI window of invalid dates is ignored: the lifetime rule stays, no Invalid Date', async () => {
    const { manager } = await scripted(DAY, () => ({
      start: new Date(Number.NaN),
      end: new Date(Number.NaN),
    }));
    const s = status(manager);
    const next = s.nextRenewalAt!.getTime();
    expect(Number.isFinite(next)).toBe(true);
    const lifetime = s.notAfter!.getTime() - s.notBefore!.getTime();
    expect(next - s.notBefore!.getTime()).toBeGreaterThanOrEqual(lifetime * (2 / 3 - 0.05) - 1);
    expect(next - s.notBefore!.getTime()).toBeLessThanOrEqual(lifetime * (2 / 3) + 1);
  });

  it('an ARI refresh asked for in 10 years is asked again within a day; one in the past not in a loop', async () => {
    const far = await scripted(90 * DAY, (info) => ({
      start: new Date(info.notBefore.getTime() + 60 * DAY),
      end: new Date(info.notBefore.getTime() + 61 * DAY),
      refreshAt: new Date(Date.now() + 315_360_000_000),
    }));
    expect(far.issuer.windowCalls).toBe(1);
    await far.clock.advance(DAY + 60_000);
    expect(far.issuer.windowCalls).toBe(2);

    const past = await scripted(90 * DAY, (info) => ({
      start: new Date(info.notBefore.getTime() + 60 * DAY),
      end: new Date(info.notBefore.getTime() + 61 * DAY),
      refreshAt: new Date(0),
    }));
    await past.clock.advance(30_000);
    expect(past.issuer.windowCalls).toBe(1);
    await past.clock.advance(60_000);
    expect(past.issuer.windowCalls).toBe(2);
  });
});
