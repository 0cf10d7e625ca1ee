// Pebble configurations of their own: external account binding required; alternate chains.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';
import { fetchOk, rig } from './support.js';

let pebble: Pebble;
const hmacKey = Buffer.from('a 32-byte secret for EAB tests!!').toString('base64url');

describePebble('ACME external account binding', () => {
  beforeAll(async () => {
    pebble = await startPebble({ eab: { 'kid-1': hmacKey }, env: { PEBBLE_AUTHZREUSE: '0' } });
  }, 30_000);
  afterAll(async () => {
    await pebble?.stop();
  });

  it('registers with EAB and issues', async () => {
    const r = await rig(pebble, {
      names: ['eab.certkeeper.test'],
      challenges: ['http-01'],
      issuer: { externalAccountBinding: { kid: 'kid-1', hmacKey } },
    });
    try {
      await r.manager.start();
      await r.manager.ready();
      expect((await fetchOk(pebble.tlsPort, 'eab.certkeeper.test', await pebble.roots())).status).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('without EAB the failure names the option, and nothing is served', async () => {
    const r = await rig(pebble, { names: ['noeab.certkeeper.test'], challenges: ['http-01'] });
    try {
      await r.manager.start();
      const failed = await new Promise<{ code: string; message: string }>((resolve) =>
        r.manager.once('renewalFailed', (e) => resolve(e.error)),
      );
      expect(failed.code).toBe('INVALID_OPTION');
      expect(failed.message).toMatch(/externalAccountBinding is required/);
      expect(r.manager.status()[0]!.state).toBe('missing');
    } finally {
      await r.close();
    }
  });

  it('a wrong EAB key is refused by the CA with its problem type', async () => {
    const r = await rig(pebble, {
      names: ['badeab.certkeeper.test'],
      challenges: ['http-01'],
      issuer: {
        externalAccountBinding: {
          kid: 'kid-1',
          hmacKey: Buffer.from('another 32-byte secret for EAB!!').toString('base64url'),
        },
      },
    });
    try {
      await r.manager.start();
      const failed = await new Promise<{ code: string; details: Record<string, unknown> }>((resolve) =>
        r.manager.once('renewalFailed', (e) => resolve(e.error)),
      );
      expect(failed.code).toBe('ACME_PROBLEM');
      expect(String(failed.details.type)).toMatch(/urn:ietf:params:acme:error:/);
    } finally {
      await r.close();
    }
  });
});

let alternate: Pebble;

describePebble('ACME preferred alternate chain', () => {
  beforeAll(async () => {
    alternate = await startPebble({ env: { PEBBLE_ALTERNATE_ROOTS: '1', PEBBLE_AUTHZREUSE: '0' } });
  }, 30_000);
  afterAll(async () => {
    await alternate?.stop();
  });

  it('serves the chain to the preferred root, and the default chain otherwise', async () => {
    const roots = [await alternate.roots(0), await alternate.roots(1)];
    const cn = (pem: string) =>
      new X509Certificate(pem).subject
        .split('\n')
        .find((l) => l.startsWith('CN='))!
        .slice(3);
    for (const [index, preferredChain] of [
      [0, undefined],
      [1, cn(roots[1]!)],
    ] as const) {
      const r = await rig(alternate, {
        names: [`chain${index}.certkeeper.test`],
        challenges: ['http-01'],
        issuer: { preferredChain, trustAnchors: roots },
      });
      try {
        await r.manager.start();
        await r.manager.ready();
        const chain = r.manager.certificate('web')!.chainPem;
        const last = new X509Certificate(chain.slice(chain.lastIndexOf('-----BEGIN CERTIFICATE-----')));
        expect(last.checkIssued(new X509Certificate(roots[index]!))).toBe(true);
        expect(
          (await fetchOk(alternate.tlsPort, `chain${index}.certkeeper.test`, roots[index]!)).status,
        ).toBe(200);
      } finally {
        await r.close();
      }
    }
  });
});
