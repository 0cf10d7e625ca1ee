// `ready()`: resolves once every certificate is served and its swap verified (its events
// emitted), and rejects, with the typed errors of the certificates not obtained, at its time
// limit, when its signal aborts, when a certificate failed in a way retrying cannot fix, or when
// the manager stops.
import type https from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import type { ManagerOptions } from '../../src/manager/options.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer, unreachableIssuer } from '../support/issuers.js';
import { close, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const managers: CertificateManager[] = [];
const servers: https.Server[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop()));
  await Promise.all(servers.splice(0).map((s) => close(s).catch(() => {})));
});

function make(options: Partial<ManagerOptions> = {}) {
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer: new SwitchableIssuer({ lifetimeMs: 3_600_000 }),
    certificates: [{ id: 'web', names: ['localhost', '127.0.0.1'] }],
    logger: quiet,
    reconcileIntervalMs: 0,
    ...options,
  });
  managers.push(manager);
  return manager;
}

function record(manager: CertificateManager) {
  const names: (keyof ManagerEvents)[] = ['obtained', 'swapped', 'liveVerifyFailed', 'rolledBack'];
  const events: string[] = [];
  for (const name of names) manager.on(name, () => events.push(name));
  return events;
}

describe('ready()', () => {
  it('resolves after the swap is verified and its events emitted: closing the server then costs nothing', async () => {
    const manager = make();
    const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
    servers.push(server);
    await listen(server);
    const events = record(manager);
    await manager.start();
    await manager.ready();
    expect(events).toEqual(['swapped', 'obtained']);
    await close(server);
    expect(events).toEqual(['swapped', 'obtained']);
    expect(manager.status()[0]).toMatchObject({ state: 'valid', renewing: false, failures: 0 });
  });

  it('rejects at its time limit with the typed errors of the certificates not obtained', async () => {
    const manager = make({
      issuer: unreachableIssuer,
      certificates: [
        { id: 'a', names: ['a.test'] },
        { id: 'b', names: ['b.test'] },
      ],
    });
    await manager.start();
    const error = (await manager.ready({ timeoutMs: 1_500 }).catch((e: unknown) => e)) as CertkeeperError;
    expect(error).toBeInstanceOf(CertkeeperError);
    expect(error).toMatchObject({
      code: 'NOT_READY',
      details: {
        reason: 'timeout',
        failed: { a: 'ISSUER_UNAVAILABLE', b: 'ISSUER_UNAVAILABLE' },
      },
      cause: { code: 'ISSUER_UNAVAILABLE' },
    });
    expect(error.message).toMatch(/2 of 2 certificates are not ready.*a \(ISSUER_UNAVAILABLE\)/);
    const errors = error.details.errors as Record<string, CertkeeperError>;
    expect(errors.a).toBeInstanceOf(CertkeeperError);
    expect(errors.a!.code).toBe('ISSUER_UNAVAILABLE');
    // The manager keeps trying: ready() is a wait, not a verdict.
    expect(manager.status().every((s) => s.failures >= 1)).toBe(true);
  });

  it('rejects at once when a certificate failed in a way retrying cannot fix', async () => {
    const spent = {
      id: 'spent',
      async issue(): Promise<never> {
        throw new CertkeeperError('TOKEN_ALREADY_USED', 'the enrollment token was used already', {
          details: { retryable: false },
        });
      },
    };
    const manager = make({ issuer: spent });
    await manager.start();
    await expect(manager.ready({ timeoutMs: 60_000 })).rejects.toMatchObject({
      code: 'NOT_READY',
      details: { reason: 'not-retryable', failed: { web: 'TOKEN_ALREADY_USED' } },
      cause: { code: 'TOKEN_ALREADY_USED' },
    });
  });

  it('rejects at once when that failure came before the call (during start): nothing will change it', async () => {
    const spent = {
      id: 'spent',
      async issue(): Promise<never> {
        // TOKEN_ALREADY_USED is not retryable by its code alone (no details.retryable).
        throw new CertkeeperError('TOKEN_ALREADY_USED', 'the enrollment token was used already');
      },
    };
    const manager = make({ issuer: spent });
    const failed = new Promise((resolve) => manager.once('renewalFailed', resolve));
    await manager.start();
    await failed;
    await expect(manager.ready({ timeoutMs: 60_000 })).rejects.toMatchObject({
      code: 'NOT_READY',
      details: { reason: 'not-retryable', failed: { web: 'TOKEN_ALREADY_USED' } },
    });
  });

  it('rejects when its signal aborts, with the errors known so far', async () => {
    const manager = make({ issuer: unreachableIssuer });
    await manager.start();
    const controller = new AbortController();
    const waiting = manager.ready({ signal: controller.signal }).catch((e: unknown) => e);
    manager.once('renewalFailed', () => controller.abort());
    expect(await waiting).toMatchObject({
      code: 'NOT_READY',
      details: { reason: 'aborted', failed: { web: 'ISSUER_UNAVAILABLE' } },
    });
    // An already aborted signal rejects at once.
    await expect(manager.ready({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'NOT_READY',
      details: { reason: 'aborted' },
    });
  });

  it('rejects with MANAGER_STOPPED when the manager stops, and when called after stop()', async () => {
    const manager = make({ issuer: unreachableIssuer });
    await manager.start();
    const waiting = manager.ready().catch((e: unknown) => e);
    await manager.stop();
    expect(await waiting).toMatchObject({ code: 'MANAGER_STOPPED' });
    await expect(manager.ready({ timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'MANAGER_STOPPED' });
  });

  it('takes ids as before, and as an option', async () => {
    const manager = make({ certificates: [{ id: 'a', names: ['a.test'] }] });
    await manager.start();
    await manager.ready(['a']);
    await manager.ready({ ids: ['a'], timeoutMs: 1_000 });
    await expect(manager.ready({ ids: ['nope'] })).rejects.toMatchObject({ code: 'UNKNOWN_CERTIFICATE' });
  });

  it.each([
    [{ timeoutMs: -1 }, 'ready.timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'ready.timeoutMs'],
    [{ signal: 'soon' }, 'ready.signal'],
    [{ ids: 'web' }, 'ready.ids'],
    [{ timeout: 5 }, 'ready.timeout'],
  ])('refuses %j naming the option', async (options, option) => {
    const manager = make();
    await expect(manager.ready(options as never)).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option },
    });
  });
});
