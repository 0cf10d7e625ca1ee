// ACME accounts shared by replicas through one real FileStore, against a real Pebble behind the
// counting proxy: the CA forgetting the account (Pebble restarted) costs one registration for the
// fleet, and a key rollover never loses the account, whichever step fails.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createHttp01Handler, Http01Solver } from '../../../src/challenges/http-01.js';
import { systemClock } from '../../../src/clock.js';
import { CertkeeperError } from '../../../src/errors.js';
import { AcmeIssuer } from '../../../src/issuers/acme/acme-issuer.js';
import type { IssuerContext } from '../../../src/issuers/issuer.js';
import { silentLogger } from '../../../src/logger.js';
import { FileStore } from '../../../src/store/file-store.js';
import type { Store } from '../../../src/store/store.js';
import { type AcmeProxy, startAcmeProxy } from '../../support/acme-proxy.js';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';
import { makeRequest } from '../../support/step-ca/harness.js';

let pebble: Pebble;
let proxy: AcmeProxy;
let dir: string;
let http01: http.Server;

function context(store: Store): IssuerContext {
  return { store, clock: systemClock, logger: silentLogger, signal: AbortSignal.timeout(20_000) };
}

/** One replica: its own issuer (transport, cached account) and its own FileStore on the shared directory. */
function replica(contact: string, store: Store = new FileStore({ directory: dir })) {
  const issuer = new AcmeIssuer({
    directoryUrl: proxy.directoryUrl,
    ca: proxy.caPem,
    agreeToTerms: true,
    contact: [`mailto:${contact}@certkeeper.test`],
    challenges: [new Http01Solver()],
  });
  return {
    issuer,
    store,
    order: async (name: string) => issuer.issue(await makeRequest([name]), context(store)),
    accountUrl: () => issuer.accountUrl(context(store)),
  };
}

/** Accounts the CA created (newAccount answered 201), since the last proxy.reset(). */
const registrations = () => proxy.requests.filter((r) => r.route === 'newAccount' && r.status === 201).length;

/** A FileStore whose next write of the account key (key.pem, not next-key.pem) fails when armed. */
function failingKeyWrite(store: FileStore): { store: Store; arm(): void } {
  let armed = false;
  const wrapped = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === 'put') {
        return async (key: string, data: Uint8Array | string) => {
          if (armed && key.endsWith('/key.pem')) {
            armed = false;
            throw new CertkeeperError('STORE_IO', 'disk full (injected)');
          }
          return (value as FileStore['put']).call(target, key, data);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: wrapped,
    arm: () => {
      armed = true;
    },
  };
}

describePebble('ACME accounts shared by replicas', () => {
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' } });
    proxy = await startAcmeProxy({ upstream: pebble });
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-accounts-'));
    const handler = createHttp01Handler(new FileStore({ directory: dir }));
    http01 = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => http01.listen(pebble.httpPort, '127.0.0.1', resolve));
  }, 30_000);
  afterAll(async () => {
    http01?.closeAllConnections();
    await new Promise((r) => http01?.close(r));
    await proxy?.close();
    await pebble?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => proxy.reset());

  it('the CA forgets the account (Pebble restarted): one re-registration for the fleet, not one per replica', async () => {
    const fleet = [replica('fleet'), replica('fleet'), replica('fleet')];
    for (const r of fleet) await r.order('fleet.certkeeper.test');
    expect(registrations()).toBe(1);
    const first = await fleet[0]!.accountUrl();

    // One after the other: each replica holds the account the CA forgot when it notices.
    await pebble.restart();
    proxy.reset();
    for (const r of fleet) await r.order('fleet.certkeeper.test');
    expect(registrations()).toBe(1);
    const second = await fleet[0]!.accountUrl();
    expect(second).not.toBe(first);
    // Every replica ordered with the one account the store holds.
    for (const r of fleet) expect(await r.accountUrl()).toBe(second);

    // All at once.
    await pebble.restart();
    proxy.reset();
    await Promise.all(fleet.map((r) => r.order('fleet.certkeeper.test')));
    expect(registrations()).toBe(1);
    const third = await fleet[0]!.accountUrl();
    expect(third).not.toBe(second);
    proxy.reset();
    await Promise.all(fleet.map((r) => r.order('fleet.certkeeper.test')));
    expect(registrations()).toBe(0);
  }, 60_000);

  it('key rollover stores the new key first: a failed store write after the CA switched keeps the account', async () => {
    const faulty = failingKeyWrite(new FileStore({ directory: dir }));
    const a = replica('roll-store', faulty.store);
    await a.order('roll.certkeeper.test');
    const url = await a.accountUrl();
    proxy.reset();
    faulty.arm();
    await expect(a.issuer.rolloverAccountKey(context(a.store))).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(proxy.requests.filter((r) => r.route === 'keyChange' && r.status === 200)).toHaveLength(1);
    // The replica that rolled over goes on with the new key; a restarted one finds it in the store.
    await a.order('roll.certkeeper.test');
    const restarted = replica('roll-store');
    await restarted.order('roll.certkeeper.test');
    expect(await restarted.accountUrl()).toBe(url);
    expect(registrations()).toBe(0);
    expect((await restarted.store.list('accounts')).filter((k) => k.endsWith('next-key.pem'))).toEqual([]);
  }, 30_000);

  it('key rollover whose request never reached the CA: both keys kept until the CA says which one it holds', async () => {
    const a = replica('roll-lost');
    await a.order('roll.certkeeper.test');
    const url = await a.accountUrl();
    proxy.reset();
    proxy.inject('keyChange', { kind: 'reset' }, 1);
    await expect(a.issuer.rolloverAccountKey(context(a.store))).rejects.toMatchObject({
      code: 'ISSUER_UNAVAILABLE',
    });
    // Whether the CA switched is unknown from here: both keys stay stored.
    const pending = (await a.store.list('accounts')).filter((k) => k.endsWith('next-key.pem'));
    expect(pending).toHaveLength(1);
    // A restarted replica settles it (the CA kept the old key), and so does the one that tried.
    const restarted = replica('roll-lost');
    await restarted.order('roll.certkeeper.test');
    await a.order('roll.certkeeper.test');
    expect(await restarted.accountUrl()).toBe(url);
    expect(registrations()).toBe(0);
    expect((await a.store.list('accounts')).filter((k) => k.endsWith('next-key.pem'))).toEqual([]);
    // Settled, the key rolls over for real, and every replica follows.
    await a.issuer.rolloverAccountKey(context(a.store));
    await restarted.order('roll.certkeeper.test');
    await a.order('roll.certkeeper.test');
    expect(registrations()).toBe(0);
  }, 30_000);
});
