// Abuse: thousands of random unknown names through real handshakes. Some the decision function
// refuses, some it allows (an attacker who can point DNS at the server): orders stay within the
// budgets, memory stays bounded, and a valid cached name is served throughout.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { registeredDomain } from '../../src/on-demand/budgets.js';
import { CountingIssuer, DEFAULT_NAME, sansOf, startRig, tempStore } from './harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const FLOOD = 2000;
const BATCH = 50;

describe('on-demand under a flood of unknown names', () => {
  it('orders nothing beyond the budgets, keeps memory bounded, and keeps serving a cached name', {
    timeout: 300_000,
  }, async () => {
    const { store, dispose } = tempStore();
    cleanups.push(dispose);
    const issuer = new CountingIssuer();
    const limits = { perDomain: 3, global: 10, deniedMax: 300, failedMax: 300 };
    const rig = await startRig(issuer, store, {
      decide: (name) => name === 'good.shop.test' || /\.open\d\.test$/.test(name),
      limits,
      maxInMemory: 5,
    });
    cleanups.push(() => rig.close());
    const good = await rig.served('good.shop.test');
    const rssBefore = process.memoryUsage().rss;

    let rssHalf = 0;
    let served = 0;
    let goodServed = 0;
    for (let sent = 0; sent < FLOOD; sent += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, i) => {
        const label = randomBytes(6).toString('hex');
        // Half refused by the decision, half allowed over 8 registered domains.
        return (sent + i) % 2 ? `${label}.evil${i % 8}.test` : `${label}.open${i % 8}.test`;
      });
      const results = await Promise.all([...batch.map((n) => rig.served(n)), rig.served('good.shop.test')]);
      served += results.length - 1;
      const goodResult = results.at(-1)!;
      expect(goodResult.serial).toBe(good.serial);
      goodServed++;
      if (sent + BATCH === FLOOD / 2) rssHalf = process.memoryUsage().rss;
      // Every flood handshake completes, with the default certificate or its own.
      for (const [i, r] of results.slice(0, -1).entries())
        expect(sansOf(r)).toContainEqual(
          expect.stringMatching(new RegExp(`^(${DEFAULT_NAME}|${batch[i]})$`)),
        );
    }
    const rssAfter = process.memoryUsage().rss;

    const status = rig.coordinator.status();
    const perDomain = new Map<string, number>();
    for (const [name, n] of issuer.perName)
      perDomain.set(registeredDomain(name), (perDomain.get(registeredDomain(name)) ?? 0) + n);
    console.log(
      `flood: ${served} handshakes, ${issuer.total - 1} orders, in memory ${status.inMemory}, denied names remembered ${status.denied}, ` +
        `RSS ${[rssBefore, rssHalf, rssAfter].map((b) => (b / 2 ** 20).toFixed(1)).join(' -> ')} MiB (start, half, end), denials ${JSON.stringify(status.counts.denied)}`,
    );
    expect(served).toBe(FLOOD);
    expect(goodServed).toBe(FLOOD / BATCH);
    // good.shop.test plus at most the global budget; no registered domain beyond its budget.
    expect(issuer.total).toBeLessThanOrEqual(1 + limits.global);
    for (const [domain, n] of perDomain) expect(n, domain).toBeLessThanOrEqual(limits.perDomain);
    expect(status.inMemory).toBeLessThanOrEqual(5);
    expect(status.denied).toBeLessThanOrEqual(limits.deniedMax);
    expect(status.failed).toBeLessThanOrEqual(limits.failedMax);
    expect(status.budgets.domains).toBeLessThanOrEqual(limits.global + 1);
    expect(status.counts.denied['decided-no']).toBe(FLOOD / 2);
    expect(status.counts.denied['global-budget'] + status.counts.denied['domain-budget']).toBeGreaterThan(0);
  });
});
