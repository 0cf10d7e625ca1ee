// TrustStore: combining sources, keeping each source's last good contribution, the guard that
// protects chains in service, and the exported bundle file.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createRotatingAgent } from '../../src/mtls/rotating-agent.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { peerIdentity } from '../../src/server/peer-identity.js';
import { FileStore } from '../../src/store/file-store.js';
import { InternalCaTrustSource } from '../../src/trust/internal-ca-source.js';
import { pemSource } from '../../src/trust/source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { makeIntermediate, makeLeaf, makePki, makeRoot } from '../support/pki.js';
import { listen } from '../support/tls.js';
import { MutableSource, nextTrustEvent } from './support.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('TrustStore', () => {
  it('combines sources into one de-duplicated bundle and reports changes', async () => {
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    const mutable = new MutableSource('mutable', [a.certificate.pem]);
    const store = new TrustStore({ sources: [pemSource('fixed', [a.certificate.pem]), mutable] });
    const first = await store.start();
    expect(first.fingerprints).toEqual([a.certificate.info.fingerprint256]);
    expect(first.version).toBe(1);
    const seen: number[] = [];
    store.subscribe((bundle) => seen.push(bundle.version));
    mutable.pems = [a.certificate.pem + b.certificate.pem];
    const changed = nextTrustEvent(store, 'changed');
    mutable.changed();
    const change = await changed;
    expect(change.added).toEqual([b.certificate.info.fingerprint256]);
    expect(change.removed).toEqual([]);
    expect(store.current().version).toBe(2);
    expect(seen).toEqual([2]);
    // Same content again: no new version.
    await store.refresh();
    expect(store.current().version).toBe(2);
    store.stop();
  });

  it('a failing or garbage source keeps its last good contribution and emits sourceFailed', async () => {
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    const flaky = new MutableSource('flaky', [a.certificate.pem]);
    const store = new TrustStore({ sources: [flaky, pemSource('other', [b.certificate.pem])] });
    await store.start();
    const before = store.current();

    flaky.pems = ['<html>502 Bad Gateway</html>'];
    const failed = nextTrustEvent(store, 'sourceFailed');
    await store.refresh();
    const event = await failed;
    expect(event.source).toBe('flaky');
    expect(event.error).toBeInstanceOf(CertkeeperError);
    expect(event.error.code).toBe('TRUST_SOURCE_FAILED');
    expect(store.current()).toBe(before);

    flaky.failure = new Error('ECONNREFUSED');
    const failedAgain = nextTrustEvent(store, 'sourceFailed');
    await store.refresh();
    expect((await failedAgain).error.code).toBe('TRUST_SOURCE_FAILED');
    expect(store.current().fingerprints).toContain(a.certificate.info.fingerprint256);
    store.stop();
  });

  it('refuses an empty bundle (TRUST_EMPTY), at start and later', async () => {
    const nothing = new MutableSource('nothing', []);
    await expect(new TrustStore({ sources: [nothing] }).start()).rejects.toMatchObject({
      code: 'TRUST_EMPTY',
    });
    const a = await makeRoot('A');
    const source = new MutableSource('s', [a.certificate.pem]);
    const store = new TrustStore({ sources: [source] });
    await store.start();
    source.pems = [];
    const refused = nextTrustEvent(store, 'refused');
    await expect(store.refresh({ force: true })).rejects.toMatchObject({ code: 'TRUST_EMPTY' });
    expect((await refused).error.code).toBe('TRUST_EMPTY');
    expect(store.current().fingerprints).toEqual([a.certificate.info.fingerprint256]);
  });

  it("TRUST_EMPTY names each failing source's own error (code and message)", async () => {
    const failing = new MutableSource('vault', []);
    failing.failure = new CertkeeperError('STORE_IO', 'vault unreachable: ECONNREFUSED');
    const empty = new MutableSource('empty', []);
    const error = await new TrustStore({ sources: [failing, empty] }).start().catch((e) => e);
    expect(error).toMatchObject({
      code: 'TRUST_EMPTY',
      message: expect.stringMatching(/vault.*STORE_IO.*vault unreachable: ECONNREFUSED/),
      details: { failed: [{ source: 'vault', code: 'STORE_IO' }] },
    });
    expect(error.cause).toMatchObject({ code: 'TRUST_SOURCE_FAILED', details: { causeCode: 'STORE_IO' } });
  });

  it("the README's mTLS pattern survives a restart (the CA's store comes from the manager at start())", async () => {
    const directory = mkdtempSync(join(tmpdir(), 'certkeeper-readme-'));
    dirs.push(directory);
    // The README's code, run twice on one store directory: first start, then a restart that
    // loads every certificate from the store and never calls the CA.
    const run = async () => {
      const ca = new InternalCA();
      const manager = createCertificateManager({
        issuer: ca,
        store: new FileStore({ directory }),
        certificates: [
          { id: 'svc', names: ['localhost'] },
          { id: 'svc-client', names: ['svc-client'], purpose: 'client' },
        ],
        logger: silentLogger,
      });
      let issued = 0;
      manager.on('obtained', () => issued++);
      await manager.start();
      await manager.ready();
      const trust = new TrustStore({ sources: [new InternalCaTrustSource(ca)] });
      await trust.start();
      const server = createHttpsServer(manager, {}, (req, res) => res.end(peerIdentity(req)?.commonName), {
        clientAuth: { trust },
      });
      const port = await listen(server);
      const agent = createRotatingAgent(manager, 'svc-client', { trust });
      const answer = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, servername: 'localhost', agent, path: '/' }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
      trust.stop();
      await manager.stop();
      return { issued, answer, fingerprints: trust.current().fingerprints };
    };
    const first = await run();
    expect(first).toMatchObject({ issued: 2, answer: 'svc-client' });
    const restarted = await run();
    expect(restarted).toEqual({ ...first, issued: 0 });
  });

  it('the guard refuses an update that leaves a protected chain untrusted; force applies it', async () => {
    const old = await makePki({ extKeyUsage: ['clientAuth'] });
    const next = await makeRoot('Next');
    const source = new MutableSource('ca', [old.rootPem]);
    const store = new TrustStore({ sources: [source], protect: () => [old.chainPem] });
    await store.start();

    // Adding a root is always fine.
    source.pems = [old.rootPem, next.certificate.pem];
    await store.refresh();
    expect(store.current().fingerprints).toHaveLength(2);

    // Dropping the root the protected chain needs is refused; nothing changes.
    source.pems = [next.certificate.pem];
    const refused = nextTrustEvent(store, 'refused');
    const error = await store.refresh().catch((e: CertkeeperError) => e);
    expect(error).toBeInstanceOf(CertkeeperError);
    expect((error as CertkeeperError).code).toBe('TRUST_UPDATE_REFUSED');
    expect((error as CertkeeperError).details.untrusted).toEqual([
      { fingerprint: old.leaf.certificate.info.fingerprint256, subject: old.leaf.certificate.info.subject },
    ]);
    const event = await refused;
    expect(event.removed).toEqual([old.root.certificate.info.fingerprint256]);
    expect(store.current().fingerprints).toHaveLength(2);

    // A chain re-issued under the new root is protected and passes.
    const intermediate = await makeIntermediate(next);
    const reissued = await makeLeaf(intermediate, { extKeyUsage: ['clientAuth'] });
    const guarded = new TrustStore({
      sources: [source],
      protect: () => [reissued.certificate.pem + intermediate.certificate.pem],
    });
    source.pems = [old.rootPem, next.certificate.pem];
    await guarded.start();
    source.pems = [next.certificate.pem];
    await expect(guarded.refresh()).resolves.toMatchObject({ version: 2 });

    // force: applied despite the guard.
    const forced = await store.refresh({ force: true });
    expect(forced.fingerprints).toEqual([next.certificate.info.fingerprint256]);
  });

  it('a chain no anchor ever covered does not block updates; a lookalike root does not satisfy the guard', async () => {
    const pki = await makePki();
    const stranger = await makePki();
    // Same subject, different key: names match, signatures do not.
    const lookalike = await makeRoot('Test Root');
    const source = new MutableSource('ca', [pki.rootPem]);
    const store = new TrustStore({ sources: [source], protect: () => [stranger.chainPem, pki.chainPem] });
    await store.start();
    source.pems = [pki.rootPem, lookalike.certificate.pem];
    await store.refresh();
    source.pems = [lookalike.certificate.pem];
    await expect(store.refresh()).rejects.toMatchObject({ code: 'TRUST_UPDATE_REFUSED' });
  });

  it('assertUpdate judges a replacement contribution without changing anything', async () => {
    const pki = await makePki();
    const other = await makeRoot('Other');
    const source = new MutableSource('ca', [pki.rootPem]);
    const store = new TrustStore({
      sources: [source, pemSource('extra', [other.certificate.pem])],
      protect: () => [pki.chainPem],
    });
    await store.start();
    await expect(store.assertUpdate([other.certificate.pem], 'ca')).rejects.toMatchObject({
      code: 'TRUST_UPDATE_REFUSED',
    });
    await expect(store.assertUpdate([pki.rootPem], 'ca')).resolves.toBeUndefined();
    expect(store.current().version).toBe(1);
  });

  it('exports the bundle atomically on every change (0644, no temp files left)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-'));
    dirs.push(dir);
    const path = join(dir, 'ca-bundle.pem');
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    const source = new MutableSource('s', [a.certificate.pem]);
    const store = new TrustStore({ sources: [source], exportPath: path });
    await store.start();
    await store.exportPem(path);
    const expectFile = (bundle: ReturnType<TrustStore['current']>) => {
      const text = readFileSync(path, 'utf8');
      expect(text).toBe(bundle.certificates.map((c) => (c.endsWith('\n') ? c : `${c}\n`)).join(''));
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(statSync(path).mode & 0o777).toBe(0o644);
      expect(readdirSync(dir)).toEqual(['ca-bundle.pem']);
    };
    expectFile(store.current());

    source.pems = [a.certificate.pem, b.certificate.pem];
    await store.refresh();
    // The automatic export runs after `changed`; wait (bounded) for the file to show both.
    for (let i = 0; i < 100 && readFileSync(path, 'utf8').split('BEGIN CERTIFICATE').length !== 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expectFile(store.current());
    expect(store.current().certificates).toHaveLength(2);
  });

  it('rapid changes leave the newest bundle in the export file, in a directory others can read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-'));
    dirs.push(dir);
    const path = join(dir, 'shared', 'ca-bundle.pem'); // `shared/` does not exist yet
    const roots = await Promise.all(['A', 'B', 'C', 'D', 'E', 'F'].map((n) => makeRoot(n)));
    const source = new MutableSource('s', [roots[0]!.certificate.pem]);
    const store = new TrustStore({ sources: [source], exportPath: path });
    await store.start();
    for (let i = 1; i < roots.length; i++) {
      source.pems = [roots[i]!.certificate.pem];
      await store.refresh();
    }
    const last = roots.at(-1)!.certificate.pem;
    for (let i = 0; i < 100 && !(existsSync(path) && readFileSync(path, 'utf8') === last); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100)); // a late, older write would land by now
    expect(readFileSync(path, 'utf8')).toBe(last);
    expect(statSync(join(dir, 'shared')).mode & 0o777).toBe(0o755);
  });

  it('validates its options', () => {
    expect(() => new TrustStore({ sources: [] })).toThrow(/sources/);
    const s = pemSource('x', []);
    expect(() => new TrustStore({ sources: [s, s] })).toThrow(/duplicate/);
    expect(() => new TrustStore({ sources: [s], pollIntervalMs: -1 })).toThrow(/pollIntervalMs/);
  });
});
