// diagnostics_channel: a subscriber with no logging or metrics dependency sees renewal attempts
// traced from start to outcome (one context object, as TracingChannel.tracePromise publishes),
// deploys and live checks against a real attached server.
import dc from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { publishDiagnostics } from '../../src/diagnostics/bridge.js';
import {
  CHANNELS,
  type DeployMessage,
  type LiveCheckMessage,
  type RenewalContext,
} from '../../src/diagnostics/channels.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function record() {
  const seen: { channel: string; message: unknown }[] = [];
  const tracing = dc.tracingChannel(CHANNELS.renewal);
  const subscribers = {
    start: (m: unknown) => seen.push({ channel: 'start', message: m }),
    end: (m: unknown) => seen.push({ channel: 'end', message: m }),
    asyncStart: (m: unknown) => seen.push({ channel: 'asyncStart', message: m }),
    asyncEnd: (m: unknown) => seen.push({ channel: 'asyncEnd', message: m }),
    error: (m: unknown) => seen.push({ channel: 'error', message: m }),
  };
  tracing.subscribe(subscribers);
  const deploy = (m: unknown) => seen.push({ channel: 'deploy', message: m });
  const live = (m: unknown) => seen.push({ channel: 'live-check', message: m });
  dc.subscribe(CHANNELS.deploy, deploy);
  dc.subscribe(CHANNELS.liveCheck, live);
  cleanup.push(() => {
    tracing.unsubscribe(subscribers);
    dc.unsubscribe(CHANNELS.deploy, deploy);
    dc.unsubscribe(CHANNELS.liveCheck, live);
  });
  return seen;
}

async function running() {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    certificates: [{ id: 'web', names: ['localhost'] }],
    logger: quiet,
    reconcileIntervalMs: 0,
  });
  cleanup.push(() => manager.stop());
  const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
  await listen(server);
  cleanup.push(() => close(server));
  return { manager, issuer, server };
}

describe('diagnostics channels', () => {
  it('a successful renewal: start → end → asyncStart → asyncEnd on one context, a deploy and a live check', async () => {
    const seen = record();
    const { manager, issuer } = await running();
    const stop = publishDiagnostics(manager);
    expect(publishDiagnostics(manager)).toBe(stop); // one bridge per manager
    cleanup.push(stop);
    await manager.start();
    await manager.ready();
    expect(seen.map((s) => s.channel)).toEqual([
      'start',
      'end',
      'deploy',
      'live-check',
      'asyncStart',
      'asyncEnd',
    ]);
    const context = seen[0]!.message as RenewalContext;
    expect(
      seen
        .filter((s) => s.channel !== 'deploy' && s.channel !== 'live-check')
        .every((s) => s.message === context),
    ).toBe(true);
    const serial = manager.status()[0]!.serial;
    expect(context).toMatchObject({
      manager,
      id: 'web',
      names: ['localhost'],
      reason: 'missing',
      attempt: 1,
      result: 'obtained',
      serial,
      issuer: issuer.id,
    });
    expect(context.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen[2]!.message as DeployMessage).toMatchObject({
      manager,
      id: 'web',
      outcome: 'swapped',
      serial,
      servingSerial: serial,
      previousSerial: null,
      servers: 1,
      verified: 1,
    });
    expect((seen[2]!.message as DeployMessage).durationMs).toBeGreaterThanOrEqual(0);
    expect(seen[3]!.message as LiveCheckMessage).toMatchObject({ id: 'web', ok: true, serial, verified: 1 });
  });

  it('a failed renewal publishes error before asyncStart; a refused certificate is a rolled-back deploy', async () => {
    const seen = record();
    const { manager, issuer } = await running();
    cleanup.push(publishDiagnostics(manager));
    await manager.start();
    await manager.ready();
    const served = manager.status()[0]!.serial;
    seen.length = 0;
    issuer.fault = 'wrong-name';
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'NAME_NOT_COVERED' });
    expect(seen.map((s) => s.channel)).toEqual(['start', 'end', 'deploy', 'error', 'asyncStart', 'asyncEnd']);
    const context = seen[0]!.message as RenewalContext;
    expect(context).toMatchObject({
      id: 'web',
      reason: 'forced',
      attempt: 1,
      error: { code: 'NAME_NOT_COVERED' },
    });
    expect(context.retryAt).toBeInstanceOf(Date);
    expect(context.result).toBeUndefined();
    expect(seen[2]!.message as DeployMessage).toMatchObject({
      outcome: 'rolled-back',
      servingSerial: served,
      error: { code: 'NAME_NOT_COVERED' },
    });
  });

  it('a live check that fails is published with the fingerprint expected', async () => {
    const seen = record();
    const { manager, server } = await running();
    cleanup.push(publishDiagnostics(manager));
    await manager.start();
    await manager.ready();
    server.setSecureContext = () => {}; // the server stops taking new certificates
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'LIVE_VERIFY_FAILED' });
    const failed = seen.find((s) => s.channel === 'live-check' && !(s.message as LiveCheckMessage).ok);
    expect(failed?.message).toMatchObject({ id: 'web', ok: false, error: { code: 'LIVE_VERIFY_FAILED' } });
    expect((failed!.message as LiveCheckMessage).expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it('publishes nothing after the bridge is stopped', async () => {
    const seen = record();
    const { manager } = await running();
    publishDiagnostics(manager)();
    await manager.start();
    await manager.ready();
    expect(seen).toEqual([]);
  });
});
