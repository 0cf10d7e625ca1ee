// What an ACME issuer reports of how each name was validated, against Pebble with authorization
// reuse on: the first order answers a challenge, the second for the same account and name is
// handed the earlier authorization, and says so.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Http01Solver, startHttp01Server } from '../../../src/challenges/http-01.js';
import { systemClock } from '../../../src/clock.js';
import { createCsr } from '../../../src/crypto/csr.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { AcmeIssuer } from '../../../src/issuers/acme/acme-issuer.js';
import { silentLogger } from '../../../src/logger.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';

describePebble('ACME issuer: how each name was validated', () => {
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

  it('names the challenge that answered, then the reused authorization', async () => {
    const issuer = new AcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      ca: pebble.caPem,
      agreeToTerms: true,
      challenges: [new Http01Solver()],
    });
    const context = { store, clock: systemClock, logger: silentLogger, signal: new AbortController().signal };
    const order = async (names: string[]) => {
      const key = await PrivateKey.generate('ec-p256');
      const request = {
        id: 'v',
        names,
        purpose: 'server' as const,
        keyType: 'ec-p256' as const,
        key,
        csr: await createCsr({ key, names }),
      };
      return issuer.issue(request, context);
    };
    const first = await order(['a.validation.test']);
    expect(first.validation).toEqual([
      { identifier: 'a.validation.test', challenge: 'http-01', reused: false },
    ]);
    const second = await order(['a.validation.test', 'b.validation.test']);
    expect(second.validation).toEqual(
      expect.arrayContaining([
        { identifier: 'a.validation.test', challenge: 'http-01', reused: true },
        { identifier: 'b.validation.test', challenge: 'http-01', reused: false },
      ]),
    );
    expect(second.validation).toHaveLength(2);
    await issuer.close?.();
  }, 60_000);
});
