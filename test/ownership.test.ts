// One ownership rule for every public class that holds resources: whoever creates an object
// closes it (the manager closes only what it created itself: its default FileStore and
// InternalCA), and every close()/stop() is async and idempotent — a second call resolves when the
// first has finished, never before. `destroy()` of RotatingAgent stays Node's synchronous
// https.Agent API, and the RotatingDispatcher follows undici's close/destroy contract.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Http01Solver, startHttp01Server } from '../src/challenges/http-01.js';
import { createRotatingGrpcClient } from '../src/grpc/rotating-client.js';
import { AcmeIssuer } from '../src/issuers/acme/acme-issuer.js';
import { StepCaIssuer } from '../src/issuers/step-ca/step-ca-issuer.js';
import { TokenSource } from '../src/issuers/step-ca/token-source.js';
import { createCertificateManager } from '../src/manager/manager.js';
import { createRotatingAgent } from '../src/mtls/rotating-agent.js';
import { createRotatingDispatcher } from '../src/mtls/rotating-dispatcher.js';
import { CachedStore } from '../src/store/cached-store.js';
import { EncryptedStore } from '../src/store/encrypted-store.js';
import { FileStore } from '../src/store/file-store.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { pemSource } from '../src/trust/source.js';
import { TrustStore } from '../src/trust/trust-store.js';
import { SwitchableIssuer } from './support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Calls `close` twice at once: both are promises, the second settles only after the first. */
async function closesOnce(close: () => unknown): Promise<void> {
  const first = close();
  const second = close();
  expect(first).toBeInstanceOf(Promise);
  expect(second).toBeInstanceOf(Promise);
  let firstDone = false;
  void (first as Promise<unknown>).then(() => {
    firstDone = true;
  });
  await second;
  expect(firstDone).toBe(true);
  // And once more, after the fact.
  await close();
}

async function clientManager() {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    logger: quiet,
    reconcileIntervalMs: 0,
    certificates: [{ id: 'client', names: ['svc'], purpose: 'client' }],
  });
  await manager.start();
  await manager.ready();
  return { manager, root: await issuer.ca.rootCertificate() };
}

describe('close() and stop(): async, idempotent, the second call waits for the first', () => {
  it('CertificateManager.stop()', async () => {
    const { manager } = await clientManager();
    await closesOnce(() => manager.stop());
  });

  it('TrustStore.stop()', async () => {
    const { manager, root } = await clientManager();
    const trust = new TrustStore({ sources: [pemSource('root', [root])] });
    await trust.start();
    await closesOnce(() => trust.stop());
    await manager.stop();
  });

  it('RotatingAgent.close(), RotatingDispatcher.close(), the rotating gRPC client close()', async () => {
    const { manager, root } = await clientManager();
    const agent = createRotatingAgent(manager, 'client', { trust: [root] });
    await closesOnce(() => agent.close());
    const dispatcher = await createRotatingDispatcher(manager, 'client', { trust: [root] });
    await closesOnce(() => dispatcher.close());
    const grpc = await createRotatingGrpcClient(manager, {
      id: 'client',
      trust: [root],
      address: '127.0.0.1:1',
      create: () => ({ close() {} }) as never,
    });
    await closesOnce(() => grpc.close());
    await manager.stop();
  });

  it('the standalone HTTP-01 listener', async () => {
    const store = new MemoryStore();
    const listener = await startHttp01Server({ store, port: 0, host: '127.0.0.1' });
    // A client holding a keep-alive connection: the first close waits for it, so must the second.
    const socket = connect(listener.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const first = listener.close();
    const second = listener.close();
    let firstDone = false;
    void first.then(() => {
      firstDone = true;
    });
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(secondDone).toBe(false);
    socket.destroy();
    await second;
    expect(firstDone).toBe(true);
    await store.close();
  });

  it('issuers: AcmeIssuer, StepCaIssuer, TokenSource', async () => {
    const acme = new AcmeIssuer({
      directoryUrl: 'https://127.0.0.1:1/dir',
      agreeToTerms: true,
      challenges: [new Http01Solver()],
    });
    await closesOnce(() => acme.close());
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-own-'));
    try {
      const tokens = new TokenSource({ file: join(dir, 'token') });
      const unwatch = tokens.watch(() => {});
      await closesOnce(() => tokens.close());
      unwatch();
      const step = new StepCaIssuer({
        caUrl: 'https://127.0.0.1:1',
        rootFingerprint: 'a'.repeat(64),
        token: { file: join(dir, 'token') },
      });
      await closesOnce(() => step.close());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores: Memory, File, Encrypted and Cached (which own the stores they wrap)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-own-'));
    try {
      await closesOnce(() => new MemoryStore().close());
      await closesOnce(() => new FileStore({ directory: join(dir, 'a') }).close());
      const inner = new MemoryStore();
      const encrypted = new EncryptedStore(inner, { keys: [Buffer.alloc(32, 7)] });
      await closesOnce(() => encrypted.close());
      await expect(inner.get('x')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
      const primary = new MemoryStore();
      const cache = new FileStore({ directory: join(dir, 'b') });
      await closesOnce(() => new CachedStore({ primary, cache, logger: quiet }).close());
      await expect(primary.get('x')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the manager closes what it created, and only that', () => {
  it('a store and an issuer passed in stay open after stop(): their creator closes them', async () => {
    const store = new MemoryStore();
    let closed = 0;
    const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
    Object.assign(issuer, {
      close: async () => {
        closed++;
      },
    });
    const manager = createCertificateManager({
      store,
      issuer,
      logger: quiet,
      reconcileIntervalMs: 0,
      certificates: [{ id: 'web', names: ['web.test'] }],
    });
    await manager.start();
    await manager.ready();
    await manager.stop();
    expect(await store.get('anything')).toBeNull();
    expect(closed).toBe(0);
    await store.close();
  });
});
