// Issuer fallback across two real ACME CAs (two Pebble instances sharing one HTTP-01 port): with
// the first one down, certificates come from the second, and the first is not asked again until
// its cooldown ends; once it is back, the next renewal returns to it, with no `replaces` pointing
// at the other CA's certificate.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Http01Solver, startHttp01Server } from '../../src/challenges/http-01.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';

describePebble('issuer fallback over two ACME CAs', () => {
  let primary: Pebble;
  let fallback: Pebble;
  let http01: Awaited<ReturnType<typeof startHttp01Server>>;
  const store = new MemoryStore();

  beforeAll(async () => {
    primary = await startPebble();
    fallback = await startPebble({ httpPort: primary.httpPort });
    http01 = await startHttp01Server({ store, port: primary.httpPort, host: '127.0.0.1' });
  }, 60_000);
  afterAll(async () => {
    await http01?.close();
    await Promise.all([primary?.stop(), fallback?.stop()]);
  });

  it('skips a CA that is down for its cooldown, and goes back to it at the next renewal once it is up', async () => {
    const issuer = (pebble: Pebble) =>
      new AcmeIssuer({
        directoryUrl: pebble.directoryUrl,
        ca: pebble.caPem,
        agreeToTerms: true,
        challenges: [new Http01Solver()],
        requestTimeoutMs: 5_000,
      });
    const failed: string[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (message: string, fields?: Record<string, unknown>) => {
        if (message === 'issuer failed') failed.push(`${fields?.id} ${fields?.issuer} ${fields?.code}`);
      },
    };
    await primary.down();
    const manager = createCertificateManager({
      store,
      logger,
      issuer: [issuer(primary), issuer(fallback)],
      issuerCooldown: { baseMs: 3_000, maxMs: 3_000, jitter: 0 },
      reconcileIntervalMs: 0,
      certificates: [{ id: 'one', names: ['one.fallback.test'] }],
    });
    try {
      await manager.start();
      await manager.ready();
      const issuerOf = (id: string) => manager.status().find((c) => c.id === id)?.issuer;
      expect(issuerOf('one')).toBe(fallback.directoryUrl);
      expect(failed).toEqual([`one ${primary.directoryUrl} ISSUER_UNAVAILABLE`]);

      // Within the cooldown: straight to the fallback, the dead CA is not asked.
      await manager.renewNow('one');
      expect(issuerOf('one')).toBe(fallback.directoryUrl);
      expect(failed).toHaveLength(1);

      // The primary is back and its cooldown over: the next renewal returns to it.
      await primary.restart();
      await new Promise((resolve) => setTimeout(resolve, 3_100));
      await manager.renewNow('one');
      expect(issuerOf('one')).toBe(primary.directoryUrl);
      expect(failed).toHaveLength(1);
    } finally {
      await manager.stop();
    }
  }, 120_000);
});
