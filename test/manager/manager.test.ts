import type https from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../src/crypto/keys.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import type { ManagerOptions } from '../../src/manager/options.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';
import { WatchedMemoryStore } from '../support/watched-memory-store.js';

const managers: CertificateManager[] = [];
const servers: https.Server[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

function make(options: Partial<ManagerOptions> = {}) {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const store = new MemoryStore();
  const manager = createCertificateManager({
    store,
    issuer,
    certificates: [{ id: 'web', names: ['localhost', '127.0.0.1'] }],
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    ...options,
  });
  managers.push(manager);
  return { manager, issuer, store };
}

function record(manager: CertificateManager) {
  const events: { name: keyof ManagerEvents; payload: unknown }[] = [];
  const names: (keyof ManagerEvents)[] = [
    'loaded',
    'storedInvalid',
    'obtaining',
    'obtained',
    'renewed',
    'adopted',
    'renewalFailed',
    'expiring',
    'swapped',
    'rolledBack',
    'liveVerifyFailed',
    'revoked',
  ];
  for (const name of names) manager.on(name, (payload: unknown) => events.push({ name, payload }));
  return events;
}

describe('options are validated eagerly, naming the option', () => {
  it.each([
    [
      { certificates: [{ names: ['ok.test'] }, { names: ['ok2.test', 'bad name'] }] },
      /options\.certificates\[1\]\.names\[1\]/,
    ],
    [{ certificates: [{ names: [] }] }, /options\.certificates\[0\]\.names must be a non-empty array/],
    [
      { certificates: [{ names: ['a.test'], keyType: 'rsa-1024' }] },
      /options\.certificates\[0\]\.keyType must be one of/,
    ],
    [{ certificates: [{ names: ['a.test'], purpose: 'email' }] }, /options\.certificates\[0\]\.purpose/],
    [
      { certificates: [{ names: ['a.test'] }, { names: ['A.test'] }] },
      /options\.certificates\[1\]\.id duplicates/,
    ],
    [{ certificates: 'a.test' }, /options\.certificates must be an array/],
    [{ certificates: [], issuer: [] }, /options\.issuer must not be an empty list/],
    [{ certificates: [], issuer: { id: 'x' } }, /options\.issuer must implement the Issuer interface/],
    [{ certificates: [], store: {} }, /options\.store must implement the Store interface/],
    [{ certificates: [], renewal: { renewAt: 3 } }, /options\.renewal\.renewAt/],
    [{ certificates: [], concurrency: 0 }, /options\.concurrency/],
    [{ certificates: [], logger: console.log }, /options\.logger/],
    [{ certificates: [] }, /options\.certificates must list at least one certificate/],
    [{ certificates: [{ names: ['a.test'] }], issuers: [] }, /options\.issuers is not an option/],
    [
      { certificates: [{ names: ['a.test'] }], renewal: { renewat: 0.5 } },
      /options\.renewal\.renewat is not/,
    ],
    [
      { certificates: [{ names: ['a.test'], keytype: 'rsa-2048' }] },
      /options\.certificates\[0\]\.keytype is not/,
    ],
    [
      { certificates: [{ names: ['a.test'] }], renewal: { renewAt: 0.1, jitter: 0.2 } },
      /options\.renewal\.jitter must be smaller than renewal\.renewAt/,
    ],
    [{ certificates: [{ names: ['a.test'] }], keepAlive: 'yes' }, /options\.keepAlive/],
    [{ certificates: [{ names: ['a.test'] }], reconcileIntervalMs: 5 }, /options\.reconcileIntervalMs/],
    [{ certificates: [{ names: ['a.test'] }], stopTimeoutMs: -1 }, /options\.stopTimeoutMs/],
  ])('%#: %j', (options, message) => {
    let error: unknown;
    try {
      createCertificateManager({
        store: new MemoryStore(),
        ...(options as object),
      } as unknown as ManagerOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(message) });
    // The option is named in the details too, as the message names it.
    const option = (error as { details: { option: string } }).details.option;
    expect((error as Error).message).toContain(`options.${option}`);
  });

  it('refuses a purpose no issuer can issue', () => {
    const serverOnly = {
      id: 'public-acme',
      supportsPurpose: (p: string) => p === 'server',
      issue: async () => ({ chainPem: '' }),
    };
    expect(() =>
      createCertificateManager({
        store: new MemoryStore(),
        issuer: serverOnly,
        certificates: [{ names: ['svc'], purpose: 'client' }],
      }),
    ).toThrowError(
      /certificates\[0\]\.purpose is 'client', which no configured issuer can issue \(public-acme\)/,
    );
  });
});

describe('CertificateManager', () => {
  it('obtains a missing certificate, stores it and serves it on an attached server', async () => {
    const { manager, issuer, store } = make();
    const events = record(manager);
    await manager.start();
    await manager.ready();
    expect(events.map((e) => e.name)).toEqual(['obtaining', 'swapped', 'obtained']);
    const status = manager.status()[0]!;
    expect(status).toMatchObject({
      id: 'web',
      state: 'valid',
      issuer: issuer.id,
      failures: 0,
      lastError: null,
    });
    expect(status.nextRenewalAt!.getTime()).toBeGreaterThan(Date.now());

    const pointer = JSON.parse(
      Buffer.from((await store.get(layout.certificate(issuer.id, 'web').current))!).toString(),
    );
    expect(pointer.serial).toBe(status.serial);

    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    servers.push(server);
    const port = await listen(server);
    const root = await issuer.ca.rootCertificate();
    for (const servername of ['localhost', undefined]) {
      const served = await handshake(port, { servername, ca: root, rejectUnauthorized: true });
      expect(served.serial).toBe(status.serial);
      expect(served.authorized).toBe(true);
    }
  });

  it('renewNow replaces the certificate and live-verifies the swap', async () => {
    const { manager } = make();
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    servers.push(server);
    await manager.start();
    await manager.ready();
    const port = await listen(server);
    const before = manager.status()[0]!.serial;
    const events = record(manager);
    await manager.renewNow('web');
    const after = manager.status()[0]!.serial;
    expect(after).not.toBe(before);
    const swapped = events.find((e) => e.name === 'swapped')!.payload as ManagerEvents['swapped'][0];
    expect(swapped).toMatchObject({ serial: after, previousSerial: before, servers: 1, verified: 1 });
    expect(events.find((e) => e.name === 'renewed')).toBeTruthy();
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(after);
  });

  it('renewAll re-issues every certificate (rotate everything after an intermediate compromise)', async () => {
    const { manager, issuer, store } = make({
      certificates: [
        { names: ['a.test'] },
        { names: ['b.test'] },
        { names: ['svc-client'], purpose: 'client' },
      ],
    });
    await manager.start();
    await manager.ready();
    const before = manager.status().map((s) => s.serial);
    await issuer.ca.rotateIntermediate(store);
    await manager.renewAll();
    const after = manager.status();
    for (const [i, s] of after.entries()) expect(s.serial).not.toBe(before[i]);
    const newIntermediate = Buffer.from(
      (await store.get(layout.ca(issuer.ca.name, 'intermediate.pem')))!,
    ).toString();
    for (const s of after)
      expect(manager.certificate(s.id)!.chainPem).toContain(newIntermediate.trim().split('\n')[1]);
  });

  it('renewAll attempts every certificate and rejects naming the ones that failed', async () => {
    const { manager, issuer } = make({
      certificates: [{ names: ['a.test'] }, { names: ['b.test'] }, { names: ['c.test'] }],
    });
    await manager.start();
    await manager.ready();
    const before = new Map(manager.status().map((s) => [s.id, s.serial]));
    issuer.fault = 'down';
    issuer.faultNames = ['b.test'];
    const error = await manager.renewAll().catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'RENEWAL_FAILED',
      message: '1 of 3 certificates were not renewed: b.test (ISSUER_UNAVAILABLE)',
      details: { failed: { 'b.test': 'ISSUER_UNAVAILABLE' } },
      cause: { code: 'ISSUER_UNAVAILABLE' },
    });
    const after = new Map(manager.status().map((s) => [s.id, s]));
    expect(after.get('a.test')!.serial).not.toBe(before.get('a.test'));
    expect(after.get('c.test')!.serial).not.toBe(before.get('c.test'));
    // The one that failed keeps being served and is retried on the usual backoff.
    expect(after.get('b.test')).toMatchObject({ serial: before.get('b.test'), failures: 1 });
  });

  it('an issuer that never answers (and ignores the signal) cannot outlast the attempt, nor stop()', async () => {
    const { manager, issuer } = make({ issueTimeoutMs: 1_000 });
    await manager.start();
    await manager.ready();
    const serial = manager.status()[0]!.serial;
    issuer.fault = 'hang';
    await expect(manager.renewNow('web')).rejects.toMatchObject({
      code: 'ISSUER_UNAVAILABLE',
      message: expect.stringMatching(/did not answer before the attempt was given up/),
    });
    expect(manager.status()[0]).toMatchObject({ serial, failures: 1, renewing: false });
    // Hung again, then stopped: stop() ends the attempt instead of waiting on the issuer.
    const hung = manager.renewNow('web').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await manager.stop();
    expect(await hung).toMatchObject({ code: 'MANAGER_STOPPED' });
  });

  it('revokes through the issuer and replaces the revoked certificate', async () => {
    const { manager, issuer, store } = make();
    await manager.start();
    await manager.ready();
    const serial = manager.status()[0]!.serial!;
    const events = record(manager);
    await manager.revoke('web', 'keyCompromise');
    expect(await issuer.ca.revokedSerials(store)).toEqual([serial]);
    expect(manager.status()[0]!.serial).not.toBe(serial);
    expect(events.map((e) => e.name)).toContain('revoked');
  });

  it('tries issuers in order and uses the first that succeeds', async () => {
    const first = new SwitchableIssuer({ id: 'first', name: 'first' });
    const second = new SwitchableIssuer({ id: 'second', name: 'second' });
    first.fault = 'down';
    const { manager } = make({ issuer: [first, second] });
    await manager.start();
    await manager.ready();
    expect(first.calls).toBe(1);
    expect(manager.status()[0]!.issuer).toBe('second');
  });

  it('manages certificates added later and serves them by SNI', async () => {
    const { manager } = make();
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    servers.push(server);
    await manager.start();
    const port = await listen(server);
    manager.manage({ id: 'api', names: ['api.test', '*.api.test'] });
    await manager.ready(['api']);
    const api = manager.status().find((s) => s.id === 'api')!;
    expect((await handshake(port, { servername: 'x.api.test' })).serial).toBe(api.serial);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(manager.status()[0]!.serial);
    manager.unmanage('api');
    expect(manager.lookup('x.api.test')).toBeUndefined();
  });

  it('stop() is idempotent and later calls fail with MANAGER_STOPPED', async () => {
    const { manager } = make();
    await manager.start();
    await manager.stop();
    await manager.stop();
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'MANAGER_STOPPED' });
    await expect(manager.renewAll()).rejects.toMatchObject({ code: 'MANAGER_STOPPED' });
    expect(() => manager.status()).not.toThrow();
  });

  it('never puts key material in events, status or logs', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})),
      info: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})),
      warn: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})),
      error: (m: string, f?: object) => lines.push(m + JSON.stringify(f ?? {})),
    };
    const { manager, issuer } = make({ logger });
    const events = record(manager);
    await manager.start();
    await manager.ready();
    issuer.fault = 'wrong-key';
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'KEY_MISMATCH' });
    issuer.fault = 'garbage';
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'MALFORMED_PEM' });
    issuer.fault = null;
    await manager.renewNow('web');
    const key = manager.credentials('web')!.key;
    expect(key).toBeInstanceOf(PrivateKey);
    const secret = key.toPem().split('\n').slice(1, 3).join('');
    const surfaces = [JSON.stringify(events), JSON.stringify(manager.status()), lines.join('\n')];
    for (const surface of surfaces) {
      expect(surface).not.toContain(secret.slice(0, 24));
      expect(surface).not.toMatch(/PRIVATE KEY/);
    }
    expect(events.map((e) => e.name)).toEqual(
      expect.arrayContaining(['rolledBack', 'renewalFailed', 'renewed']),
    );
  });

  it('emits typed events that carry errors with stable codes', async () => {
    const { manager, issuer } = make();
    await manager.start();
    await manager.ready();
    issuer.fault = 'down';
    const failed = nextEvent(manager, 'renewalFailed');
    const renewal = manager.renewNow('web');
    const payload = await failed;
    // The caller learns it too, with the same typed error.
    await expect(renewal).rejects.toBe(payload.error);
    expect(payload.error.code).toBe('ISSUER_UNAVAILABLE');
    expect(payload.servingSerial).toBe(manager.status()[0]!.serial);
    expect(payload.retryAt.getTime()).toBeGreaterThan(Date.now());
    expect(manager.status()[0]!.lastError).toEqual({
      code: 'ISSUER_UNAVAILABLE',
      message: 'test issuer is down',
    });
  });
});

describe('start() and stop() racing', () => {
  it('stop() while start() is under way leaves no loop running; concurrent start() calls wait for the same start', async () => {
    // Subscribing to the store's changes (the last step of start) waits until the test says so.
    let subscribe!: () => void;
    const gate = new Promise<void>((resolve) => {
      subscribe = resolve;
    });
    const store = new (class extends WatchedMemoryStore {
      override async watch(...args: Parameters<WatchedMemoryStore['watch']>) {
        await gate;
        return super.watch(...args);
      }
    })();
    const clock = new FakeClock();
    const { manager } = make({ store, clock, reconcileIntervalMs: 0 });
    const obtaining: string[] = [];
    manager.on('obtaining', (e) => obtaining.push(e.reason));
    const first = manager.start();
    let firstDone = false;
    void first.then(() => {
      firstDone = true;
    });
    const second = manager.start();
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(firstDone).toBe(false);
    expect(secondDone).toBe(false);
    const stopped = manager.stop();
    subscribe();
    await Promise.all([first, second, stopped]);
    expect(firstDone).toBe(true);
    await clock.advance(3_600_000);
    expect(obtaining).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
