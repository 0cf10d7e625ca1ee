// Renewal only while a certificate is used, and removal of those nobody uses, driven by a
// FakeClock (it starts at the real time, so the certificates it dates are accepted by real TLS).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import type { OnDemandEvent } from '../../src/on-demand/events.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { CountingIssuer, startRig, tempStore } from './harness.js';

const MINUTE = 60_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function rigAt(clock: FakeClock, options: { forgetAfterMs?: number } = {}) {
  const { store, dispose } = tempStore();
  const issuer = new CountingIssuer(new InternalCA({ lifetimeMs: 60 * MINUTE }));
  const rig = await startRig(
    issuer,
    store,
    { decide: () => true, sweepIntervalMs: 0, ...options },
    { clock },
  );
  const events: OnDemandEvent[] = [];
  rig.coordinator.events.on((e) => events.push(e));
  cleanups.push(dispose, () => rig.close());
  return { rig, issuer, store, events };
}

describe('on-demand lifecycle', () => {
  it('renews on the first handshake after a third of the lifetime is left, and only names in use', async () => {
    const clock = new FakeClock();
    const { rig, issuer, events } = await rigAt(clock);
    const used = await rig.served('used.test');
    await rig.served('idle.test');
    await vi.waitFor(() => expect(events.filter((e) => e.type === 'obtained')).toHaveLength(2));

    await clock.advance(39 * MINUTE);
    expect((await rig.served('used.test')).serial).toBe(used.serial);
    expect(issuer.total).toBe(2);

    await clock.advance(2 * MINUTE);
    // Due: this handshake is still served the current certificate, and starts the renewal.
    expect((await rig.served('used.test')).serial).toBe(used.serial);
    await vi.waitFor(() => expect(events.filter((e) => e.type === 'obtained')).toHaveLength(3));
    expect(events.filter((e) => e.type === 'ordered').at(-1)).toEqual({
      type: 'ordered',
      name: 'used.test',
      renewal: true,
    });
    const renewed = await rig.served('used.test');
    expect(renewed.serial).not.toBe(used.serial);
    // Nobody connected to idle.test: it was not renewed.
    expect(issuer.perName.get('idle.test')).toBe(1);
    expect(issuer.perName.get('used.test')).toBe(2);
  });

  it('forgets certificates not served for forgetAfterMs, from memory and the store', async () => {
    const clock = new FakeClock();
    const { rig, issuer, events, store } = await rigAt(clock, { forgetAfterMs: 10 * MINUTE });
    await rig.served('gone.test');
    await rig.served('kept.test');
    // Committed (the commit runs behind the handshake, under the name's lock).
    await vi.waitFor(() => expect(events.filter((e) => e.type === 'obtained')).toHaveLength(2));
    await clock.advance(6 * MINUTE);
    await rig.served('kept.test');
    // The seen-record is written behind the handshake.
    await vi.waitFor(async () => {
      const raw = await store.get('on-demand/seen/kept.test');
      expect(JSON.parse(Buffer.from(raw!).toString()).at).toBe(clock.now());
    });
    await clock.advance(5 * MINUTE);

    expect(await rig.coordinator.sweep()).toEqual({ memory: 1, store: 1 });
    expect(events.filter((e) => e.type === 'forgotten')).toEqual([{ type: 'forgotten', name: 'gone.test' }]);
    const signal = new AbortController().signal;
    expect(await rig.host.load('gone.test', signal)).toBeNull();
    expect(await rig.host.load('kept.test', signal)).not.toBeNull();
    expect(rig.coordinator.status().inMemory).toBe(1);

    // Back again: ordered anew.
    await rig.served('gone.test');
    expect(issuer.perName.get('gone.test')).toBe(2);
  });

  it('keeps at most maxInMemory certificates in memory and loads evicted ones from the store', async () => {
    const { store, dispose } = tempStore();
    const issuer = new CountingIssuer();
    const rig = await startRig(issuer, store, { decide: () => true, maxInMemory: 3 });
    cleanups.push(dispose, () => rig.close());
    const events: OnDemandEvent[] = [];
    rig.coordinator.events.on((e) => events.push(e));
    const first = await rig.served('m0.test');
    await vi.waitFor(() => expect(events.filter((e) => e.type === 'obtained')).toHaveLength(1));
    for (let i = 1; i < 6; i++) await rig.served(`m${i}.test`);
    expect(rig.coordinator.status()).toMatchObject({ inMemory: 3, evicted: 3 });
    expect((await rig.served('m0.test')).serial).toBe(first.serial);
    expect(events.at(-1)).toMatchObject({ type: 'loaded', name: 'm0.test' });
    expect(issuer.total).toBe(6);
  });

  it('writes when a name was last served at most once per forgetAfterMs / 10', async () => {
    const clock = new FakeClock();
    const { rig, store, events } = await rigAt(clock, { forgetAfterMs: 10 * MINUTE });
    const seenAt = async () => {
      const raw = await store.get('on-demand/seen/often.test');
      return raw && JSON.parse(Buffer.from(raw).toString()).at;
    };
    await rig.served('often.test');
    await vi.waitFor(() => expect(events.some((e) => e.type === 'obtained')).toBe(true));
    const first = await seenAt();
    expect(first).toBe(clock.now());
    await clock.advance(MINUTE / 2);
    await rig.served('often.test');
    // Give a write that should not happen the time to land.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await seenAt()).toBe(first);
    await clock.advance(MINUTE / 2 + 1);
    await rig.served('often.test');
    await vi.waitFor(async () => expect(await seenAt()).toBe(clock.now()));
  });

  it('a listener that throws does not fail the handshake', async () => {
    const { rig } = await rigAt(new FakeClock());
    rig.coordinator.events.on(() => {
      throw new Error('listener bug');
    });
    expect((await rig.served('listener.test')).subjectaltname).toBe('DNS:listener.test');
  });
});
