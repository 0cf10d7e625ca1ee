// Client identities (purpose 'client'): which issuers may hold them, and the generation key the
// rotating agent, dispatcher and gRPC client share.
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Http01Solver } from '../../src/challenges/http-01.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { ClientIdentity } from '../../src/mtls/generations.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { mutableTrust, silent, startService } from './support.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const acme = (clientAuth?: boolean) =>
  new AcmeIssuer({
    directoryUrl: 'https://127.0.0.1:1/dir', // never contacted: these tests stop at configuration
    agreeToTerms: true,
    challenges: [new Http01Solver()],
    ...(clientAuth === undefined ? {} : { clientAuth }),
  });

describe('client identities', () => {
  it('an ACME issuer is refused for a client certificate at configuration time, naming the option', () => {
    let error: unknown;
    try {
      createCertificateManager({
        store: new MemoryStore(),
        issuer: acme(),
        certificates: [
          { id: 'web', names: ['web.test'] },
          { id: 'svc', names: ['svc.test'], purpose: 'client' },
        ],
        logger: silent,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'certificates[1].purpose' },
      message: expect.stringMatching(/options\.certificates\[1\]\.purpose is 'client'.*private CA/),
    });
  });

  it('a private ACME CA may be allowed explicitly; with a private CA beside public ACME the client certificate goes to the private one', async () => {
    expect(() =>
      createCertificateManager({
        store: new MemoryStore(),
        issuer: acme(true),
        certificates: [{ id: 'svc', names: ['svc.test'], purpose: 'client' }],
        logger: silent,
      }),
    ).not.toThrow();

    const ca = new SwitchableIssuer({ lifetimeMs: 600_000 });
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer: [acme(), ca],
      certificates: [{ id: 'svc', names: ['svc.test'], purpose: 'client' }],
      logger: silent,
      reconcileIntervalMs: 0,
    });
    cleanups.push(() => manager.stop());
    await manager.start();
    await manager.ready();
    expect(ca.calls).toBe(1);
    expect(manager.certificate('svc')).not.toBeNull();
  });

  it('the generation key changes with the client serial and with the trust bundle version, and only then', async () => {
    const a = await startService('a');
    cleanups.push(() => a.manager.stop());
    const trust = mutableTrust([a.root]);
    const identity = new ClientIdentity(a.manager, 'a-client', { trust });
    const changes: number[] = [];
    const stop = identity.onChange(() => changes.push(changes.length));
    const g1 = identity.current();
    expect(identity.current()).toBe(g1); // cached: the per-request check allocates nothing new
    expect(g1.key).toBe(`${a.manager.certificate('a-client')!.serial}/1`);
    expect(g1.privateKey.toPem()).toContain('PRIVATE KEY');
    // Logged or serialised, a generation shows no key material.
    expect(JSON.stringify(g1)).not.toMatch(/PRIVATE KEY/);
    expect(JSON.stringify(g1)).toContain('"material":"redacted"');
    expect(inspect(g1)).not.toMatch(/PRIVATE KEY/);
    expect(g1.ca).toEqual(trust.current().certificates);

    await a.manager.renewNow('a-web'); // another certificate: no change
    expect(identity.current()).toBe(g1);
    await a.manager.renewNow('a-client');
    const g2 = identity.current();
    expect(g2.serial).not.toBe(g1.serial);
    expect(g2.key).toBe(`${g2.serial}/1`);
    trust.set([a.root]);
    expect(identity.current().key).toBe(`${g2.serial}/2`);
    expect(changes).toHaveLength(2);
    stop();
    await a.manager.renewNow('a-client');
    expect(changes).toHaveLength(2);
    expect(() => new ClientIdentity(a.manager, 'a-web')).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
