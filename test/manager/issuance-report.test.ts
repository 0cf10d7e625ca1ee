// Events and status say how a certificate was obtained: which replica held the issuance lock,
// which challenge type answered for each name, and whether the CA reused an authorization —
// against Pebble with authorization reuse on.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Http01Solver, startHttp01Server } from '../../src/challenges/http-01.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { nextEvent } from '../support/events.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';

describePebble('how a certificate was obtained', () => {
  let pebble: Pebble;
  let http01: Awaited<ReturnType<typeof startHttp01Server>>;
  const store = new MemoryStore();
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '100' } });
    http01 = await startHttp01Server({ store, port: pebble.httpPort, host: '127.0.0.1' });
  }, 30_000);
  afterAll(async () => {
    await http01?.close();
    await pebble?.stop();
  });

  it('names the replica, the challenge type, and a reused authorization on renewal', async () => {
    const manager = createCertificateManager({
      store,
      replicaId: 'replica-a',
      reconcileIntervalMs: 0,
      issuer: new AcmeIssuer({
        directoryUrl: pebble.directoryUrl,
        ca: pebble.caPem,
        agreeToTerms: true,
        challenges: [new Http01Solver()],
      }),
      certificates: [{ id: 'web', names: ['report.issuance.test'] }],
    });
    try {
      const obtained = nextEvent(manager, 'obtained', 30_000);
      await manager.start();
      await manager.ready();
      expect(await obtained).toMatchObject({
        replica: 'replica-a',
        validation: [{ identifier: 'report.issuance.test', challenge: 'http-01', reused: false }],
      });
      const renewed = nextEvent(manager, 'renewed', 30_000);
      await manager.renewNow('web');
      const event = await renewed;
      expect(event).toMatchObject({
        replica: 'replica-a',
        validation: [{ identifier: 'report.issuance.test', challenge: 'http-01', reused: true }],
      });
      expect(manager.status()[0]!.lastIssuance).toMatchObject({
        serial: event.serial,
        issuer: pebble.directoryUrl,
        replica: 'replica-a',
        validation: [{ reused: true }],
      });
    } finally {
      await manager.stop();
    }
  }, 60_000);
});
