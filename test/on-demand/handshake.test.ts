// On-demand certificates through real TLS handshakes: a tls.Server whose SNICallback is the
// coordinator, the embedded CA as issuer, a FileStore underneath.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { OnDemandEvent } from '../../src/on-demand/events.js';
import { CountingIssuer, DEFAULT_NAME, type Rig, sansOf, served, startRig, tempStore } from './harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function track(rig: Rig): OnDemandEvent[] {
  const events: OnDemandEvent[] = [];
  rig.coordinator.events.on((e) => events.push(e));
  cleanups.push(() => rig.close());
  return events;
}

const allowShop = (name: string) => name.endsWith('.shop.test');

describe('on-demand handshakes (embedded CA, FileStore)', () => {
  it('serves a new name on its first handshake, then from memory, then from the store after a restart', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    const rig = await startRig(issuer, store, { decide: allowShop });
    const events = track(rig);

    const first = await rig.served('a.shop.test');
    expect(sansOf(first)).toEqual(['a.shop.test']);
    expect(first.authorized).toBe(true);
    // Served once issued; the commit to the store finishes behind the handshake.
    await vi.waitFor(() => expect(events.map((e) => e.type)).toEqual(['allowed', 'ordered', 'obtained']));

    const second = await rig.served('a.shop.test');
    expect(second.serial).toBe(first.serial);
    expect(events).toHaveLength(3);
    expect(issuer.total).toBe(1);

    // A new coordinator (a restart) over the same store: loaded, not ordered again.
    await rig.close();
    const again = await startRig(issuer, store, { decide: allowShop });
    const afterRestart = track(again);
    const third = await again.served('a.shop.test');
    expect(third.serial).toBe(first.serial);
    expect(afterRestart.map((e) => e.type)).toEqual(['allowed', 'loaded']);
    expect(issuer.total).toBe(1);
  });

  it('serves the default certificate to a denied name, or ends the handshake with onFailure refuse', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    const rig = await startRig(issuer, store, { decide: allowShop });
    const events = track(rig);
    expect(sansOf(await rig.served('evil.example'))).toEqual([DEFAULT_NAME]);
    expect(events).toEqual([
      { type: 'denied', name: 'evil.example', reason: 'decided-no', clientIp: '127.0.0.1' },
    ]);

    const refusing = await startRig(issuer, store, { decide: allowShop, onFailure: 'refuse' });
    track(refusing);
    await expect(refusing.served('evil.example')).rejects.toThrow();
    expect(issuer.total).toBe(0);
  });

  it('serves 100 new names at once with exactly one order per name within the concurrency bound', {
    timeout: 120_000,
  }, async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    issuer.delayMs = 20;
    const rig = await startRig(issuer, store, {
      decide: allowShop,
      limits: { concurrentOrders: 4, perDomain: 100 },
      waitMs: 60_000,
    });
    const ev = track(rig);
    const names = Array.from({ length: 100 }, (_, i) => `n${i}.shop.test`);
    // Every name twice at the same moment: single flight must still order it once.
    const served = await Promise.all([...names, ...names].map((name) => rig.served(name)));
    expect(ev.filter((e) => e.type === 'failed' || e.type === 'denied')).toEqual([]);
    expect(served.map(sansOf)).toEqual([...names, ...names].map((n) => [n]));
    expect(issuer.total).toBe(100);
    expect([...issuer.perName.values()].every((n) => n === 1)).toBe(true);
    expect(issuer.peak).toBeLessThanOrEqual(4);
    expect(rig.coordinator.status().peakConcurrentOrders).toBeLessThanOrEqual(4);
    expect(served[0]!.serial).toBe(served[100]!.serial);
  });

  it('a decision function that hangs does not hold the handshake past its timeout', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const rig = await startRig(new CountingIssuer(), store, {
      decide: () => new Promise<boolean>(() => {}),
      limits: { decideTimeoutMs: 300 },
      waitMs: 120_000,
    });
    const events = track(rig);
    const served = await rig.served('slow.shop.test');
    expect(sansOf(served)).toEqual([DEFAULT_NAME]);
    expect(events).toEqual([expect.objectContaining({ type: 'denied', reason: 'decide-timeout' })]);
  });

  it('a failing order serves the default certificate and is not retried on every connection', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    issuer.down = true;
    const rig = await startRig(issuer, store, { decide: allowShop });
    const events = track(rig);
    expect(sansOf(await rig.served('down.shop.test'))).toEqual([DEFAULT_NAME]);
    expect(sansOf(await rig.served('down.shop.test'))).toEqual([DEFAULT_NAME]);
    expect(issuer.total).toBe(1);
    expect(events.filter((e) => e.type === 'failed')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'denied', reason: 'backoff' });
  });

  it('a name the client spells differently is the same certificate', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    const rig = await startRig(issuer, store, { decide: allowShop });
    track(rig);
    const a = await rig.served('Mixed.Shop.Test');
    const b = await served(rig.port, { servername: 'mixed.shop.test' });
    expect(a.serial).toBe(b.serial);
    expect(issuer.total).toBe(1);
  });

  it('an order that outlasts waitMs goes on, and the next handshake is served what it obtained', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    issuer.delayMs = 1500;
    const rig = await startRig(issuer, store, { decide: allowShop, waitMs: 100 });
    const events = track(rig);
    expect(sansOf(await rig.served('late.shop.test'))).toEqual([DEFAULT_NAME]);
    await vi.waitFor(() => expect(events.some((e) => e.type === 'obtained')).toBe(true), { timeout: 30_000 });
    expect(sansOf(await rig.served('late.shop.test'))).toEqual(['late.shop.test']);
    expect(issuer.total).toBe(1);
  });

  it('an order that outlasts orderTimeoutMs is given up as failed', async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    issuer.delayMs = 600_000;
    const rig = await startRig(issuer, store, { decide: allowShop, waitMs: 100, orderTimeoutMs: 500 });
    const events = track(rig);
    expect(sansOf(await rig.served('stuck.shop.test'))).toEqual([DEFAULT_NAME]);
    await vi.waitFor(() => expect(events.at(-1)).toMatchObject({ type: 'failed', name: 'stuck.shop.test' }), {
      timeout: 30_000,
    });
  });
});
