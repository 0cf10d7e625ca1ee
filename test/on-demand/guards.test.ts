// What the on-demand path refuses: certificates planted in the store, bad options, renewals of
// names no longer allowed, damaged seen-records, and orders beyond the budget even when they fail.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { isCertkeeperError } from '../../src/errors.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { commitGeneration, metaOf } from '../../src/manager/records.js';
import { OnDemandCoordinator } from '../../src/on-demand/coordinator.js';
import type { OnDemandEvent } from '../../src/on-demand/events.js';
import { IssuerHost, onDemandId } from '../../src/on-demand/issuer-host.js';
import type { OnDemandOptions } from '../../src/on-demand/options.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { selfSigned } from '../support/issuers.js';
import { CountingIssuer, DEFAULT_NAME, sansOf, startRig, tempStore } from './harness.js';

const MINUTE = 60_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
const never = new AbortController().signal;

describe('on-demand guards', () => {
  it('does not serve a certificate planted in the store that does not chain to the issuer', async () => {
    const store = new MemoryStore();
    const issuer = new CountingIssuer();
    // The CA exists first (the rig reads its roots): a planted certificate is then only foreign.
    const rig = await startRig(issuer, store, { decide: () => true });
    cleanups.push(() => rig.close());
    const { key, certificate } = await selfSigned(['planted.test']);
    const chain = parseCertificates(certificate.pem);
    const generation = {
      issuer: issuer.id,
      chainPem: certificate.pem,
      key,
      info: chain[0]!.info,
      chain: chain.map((c) => c.info),
      storedAt: Date.now(),
    };
    const id = onDemandId('planted.test');
    const facts = { id, names: ['planted.test'], keyType: 'ec-p256' as const, purpose: 'server' as const };
    await commitGeneration(store, id, generation, metaOf(generation, facts, Date.now()), null);
    expect(await rig.host.load('planted.test', never)).toBeNull();

    const served = await rig.served('planted.test');
    expect(served.authorized).toBe(true);
    expect(served.serial).not.toBe(chain[0]!.info.serialNumber);
    expect(issuer.total).toBe(1);
  });

  it('refuses bad options naming the option', () => {
    const host = new IssuerHost({ issuer: new InternalCA(), store: new MemoryStore() });
    const bad: Array<[unknown, string]> = [
      [{}, 'decide'],
      [{ decide: () => true, waitMs: 0 }, 'waitMs'],
      [{ decide: () => true, maxInMemory: 1.5 }, 'maxInMemory'],
      [{ decide: () => true, onFailure: 'drop' }, 'onFailure'],
      [{ decide: () => true, limits: { concurrentOrders: 0 } }, 'limits.concurrentOrders'],
    ];
    for (const [options, option] of bad) {
      try {
        new OnDemandCoordinator(host, options as OnDemandOptions);
        expect.unreachable(option);
      } catch (error) {
        expect(isCertkeeperError(error, 'INVALID_OPTION'), option).toBe(true);
        expect((error as { details: { option: string } }).details.option).toBe(option);
      }
    }
  });

  it('does not renew a name the decision no longer allows, and keeps serving the current certificate', async () => {
    const clock = new FakeClock();
    const { store, dispose } = tempStore();
    const issuer = new CountingIssuer(new InternalCA({ lifetimeMs: 60 * MINUTE }));
    let allowed = true;
    const rig = await startRig(issuer, store, { decide: () => allowed, sweepIntervalMs: 0 }, { clock });
    cleanups.push(dispose, () => rig.close());
    const events: OnDemandEvent[] = [];
    rig.coordinator.events.on((e) => events.push(e));
    const first = await rig.served('left.test');
    await vi.waitFor(() => expect(events.some((e) => e.type === 'obtained')).toBe(true));
    allowed = false;
    await clock.advance(41 * MINUTE);
    expect((await rig.served('left.test')).serial).toBe(first.serial);
    // The renewal check runs behind the handshake: give it time on a loaded machine.
    await vi.waitFor(() => expect(events.at(-1)).toMatchObject({ type: 'denied', reason: 'decided-no' }), {
      timeout: 10_000,
    });
    expect((await rig.served('left.test')).serial).toBe(first.serial);
    expect(issuer.total).toBe(1);
  });

  it('leaves a damaged seen-record alone', async () => {
    const clock = new FakeClock();
    const { store, dispose } = tempStore();
    const rig = await startRig(
      new CountingIssuer(),
      store,
      { decide: () => true, sweepIntervalMs: 0, forgetAfterMs: 10 * MINUTE },
      { clock },
    );
    cleanups.push(dispose, () => rig.close());
    const events: OnDemandEvent[] = [];
    rig.coordinator.events.on((e) => events.push(e));
    await rig.served('odd.test');
    await vi.waitFor(() => expect(events.some((e) => e.type === 'obtained')).toBe(true));
    await store.put('on-demand/seen/odd.test', 'not json');
    await clock.advance(20 * MINUTE);
    expect(await rig.coordinator.sweep()).toEqual({ memory: 1, store: 0 });
    expect(await rig.host.load('odd.test', never)).not.toBeNull();
  });

  it('counts an order against the budget when it starts, even when it fails', async () => {
    const clock = new FakeClock();
    const { store, dispose } = tempStore();
    const issuer = new CountingIssuer();
    issuer.down = true;
    const rig = await startRig(
      issuer,
      store,
      { decide: () => true, limits: { global: 1, failureBackoffMs: 1000 } },
      { clock },
    );
    cleanups.push(dispose, () => rig.close());
    const events: OnDemandEvent[] = [];
    rig.coordinator.events.on((e) => events.push(e));
    expect(sansOf(await rig.served('fails.test'))).toEqual([DEFAULT_NAME]);
    issuer.down = false;
    await clock.advance(2000);
    expect(sansOf(await rig.served('fails.test'))).toEqual([DEFAULT_NAME]);
    expect(issuer.total).toBe(1);
    expect(events.at(-1)).toMatchObject({ type: 'denied', reason: 'global-budget' });
  });

  it('reuses the trust anchors it read, and reads them again when they refuse a chain', async () => {
    const store = new MemoryStore();
    const issuer = new CountingIssuer();
    const host = new IssuerHost({ issuer, store });
    const lease = await store.lock('test/lease');
    const other = new InternalCA({ name: 'other' });
    const ctx = { store: new MemoryStore(), clock: host.clock, logger: host.logger, signal: never };
    // Anchors of another CA are what the host reads first (as if a root changed after the read).
    issuer.anchorsOverride = await other.trustAnchors(ctx);
    await expect(host.obtain('a.test', { signal: never, lease })).rejects.toMatchObject({
      code: 'UNTRUSTED_ROOT',
    });
    const reads = issuer.anchorReads;
    issuer.anchorsOverride = null;
    // The copy refuses the chain: read again, accepted.
    await host.obtain('b.test', { signal: never, lease });
    expect(issuer.anchorReads).toBe(reads + 1);
    // Now the copy is right and reused.
    await host.obtain('c.test', { signal: never, lease });
    expect(issuer.anchorReads).toBe(reads + 1);
  });
});
