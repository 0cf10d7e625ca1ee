// Each TrustSource against a real peer: files replaced the way secret mounts replace them, an
// HTTPS bundle endpoint on loopback (pinned by root, by fingerprint, and a wrong pin), and the
// step-ca bootstrap by fingerprint against the fake step-ca.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../src/crypto/keys.js';
import { x509 } from '../../src/crypto/x509.js';
import { CertkeeperError } from '../../src/errors.js';
import { BootstrapTrustSource } from '../../src/trust/bootstrap-source.js';
import { FileTrustSource } from '../../src/trust/file-source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { UrlTrustSource } from '../../src/trust/url-source.js';
import { OID, type RawAuthority, type RawSpec, rawCertificate } from '../crypto/raw-certificates.js';
import { makeLeaf, makePki, makeRoot } from '../support/pki.js';
import { FakeStepCa } from '../support/step-ca/ca.js';
import { listen } from '../support/tls.js';
import { nextTrustEvent } from './support.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-src-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const signal = () => new AbortController().signal;

describe('FileTrustSource', () => {
  it('picks up a file replaced by rename (temp file + rename, as Docker and editors do)', async () => {
    const dir = tempDir();
    const path = join(dir, 'ca.pem');
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    writeFileSync(path, a.certificate.pem);
    const store = new TrustStore({ sources: [new FileTrustSource({ paths: [path], pollIntervalMs: 100 })] });
    cleanups.push(() => store.stop());
    await store.start();
    expect(store.current().fingerprints).toEqual([a.certificate.info.fingerprint256]);

    const changed = nextTrustEvent(store, 'changed');
    writeFileSync(join(dir, '.tmp-new'), a.certificate.pem + b.certificate.pem);
    renameSync(join(dir, '.tmp-new'), path);
    const change = await changed;
    expect(change.added).toEqual([b.certificate.info.fingerprint256]);
  });

  it('follows a Kubernetes-style ..data symlink swap', async () => {
    const dir = tempDir();
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    mkdirSync(join(dir, 'v1'));
    writeFileSync(join(dir, 'v1', 'ca.crt'), a.certificate.pem);
    symlinkSync('v1', join(dir, '..data'));
    symlinkSync(join('..data', 'ca.crt'), join(dir, 'ca.crt'));
    const store = new TrustStore({
      sources: [new FileTrustSource({ paths: [join(dir, 'ca.crt')], pollIntervalMs: 100 })],
    });
    cleanups.push(() => store.stop());
    await store.start();

    const changed = nextTrustEvent(store, 'changed');
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v2', 'ca.crt'), b.certificate.pem);
    symlinkSync('v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    const change = await changed;
    expect(change.added).toEqual([b.certificate.info.fingerprint256]);
    expect(change.removed).toEqual([a.certificate.info.fingerprint256]);
  });

  it('a garbage file keeps the last good bundle and emits sourceFailed; a fixed file is picked up', async () => {
    const dir = tempDir();
    const path = join(dir, 'ca.pem');
    const a = await makeRoot('A');
    const b = await makeRoot('B');
    writeFileSync(path, a.certificate.pem);
    const store = new TrustStore({ sources: [new FileTrustSource({ paths: [path], pollIntervalMs: 100 })] });
    cleanups.push(() => store.stop());
    await store.start();
    const good = store.current();

    const failed = nextTrustEvent(store, 'sourceFailed');
    writeFileSync(
      join(dir, '.tmp'),
      '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n',
    );
    renameSync(join(dir, '.tmp'), path);
    const event = await failed;
    expect(event.error.code).toBe('TRUST_SOURCE_FAILED');
    expect(event.source).toBe('files:ca.pem');
    expect(store.current()).toBe(good);

    const missing = nextTrustEvent(store, 'sourceFailed');
    rmSync(path);
    expect((await missing).error.code).toBe('TRUST_SOURCE_FAILED');
    expect(store.current()).toBe(good);

    const changed = nextTrustEvent(store, 'changed');
    writeFileSync(join(dir, '.tmp'), b.certificate.pem);
    renameSync(join(dir, '.tmp'), path);
    expect((await changed).added).toEqual([b.certificate.info.fingerprint256]);
  });

  it('the poll alone notices a change when no watch event arrives', async () => {
    const dir = tempDir();
    const path = join(dir, 'ca.pem');
    const a = await makeRoot('A');
    writeFileSync(path, a.certificate.pem);
    const source = new FileTrustSource({ paths: [path], pollIntervalMs: 50, fsWatch: false });
    let calls = 0;
    const stop = source.watch(() => calls++);
    cleanups.push(stop);
    await new Promise((r) => setTimeout(r, 120));
    const before = calls;
    expect(before).toBe(0); // nothing changed yet: the poll does not report for nothing
    writeFileSync(join(dir, '.tmp'), `${a.certificate.pem}\n`);
    renameSync(join(dir, '.tmp'), path);
    for (let i = 0; i < 100 && calls === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBeGreaterThan(before);
  });
});

/** An HTTPS server answering `/bundle.pem` with `body`, presenting `pki`'s leaf. */
async function bundleServer(body: string) {
  const pki = await makePki({ names: ['127.0.0.1', 'localhost'] });
  const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (req, res) => {
    if (req.url === '/bundle.pem') res.end(body);
    else {
      res.statusCode = 404;
      res.end('no');
    }
  });
  const port = await listen(server);
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { pki, url: `https://127.0.0.1:${port}/bundle.pem`, port };
}

describe('UrlTrustSource', () => {
  it('fetches over a connection verified against the given root', async () => {
    const anchor = await makeRoot('Published');
    const { pki, url } = await bundleServer(anchor.certificate.pem);
    const source = new UrlTrustSource({ url, ca: pki.rootPem });
    const [pem] = await source.load(signal());
    expect(pem).toBe(anchor.certificate.pem);
  });

  it('fetches when a presented certificate matches a pin (leaf or intermediate)', async () => {
    const anchor = await makeRoot('Published');
    const { pki, url } = await bundleServer(anchor.certificate.pem);
    const leafPin = pki.leaf.certificate.info.fingerprint256.toUpperCase().match(/../g)!.join(':');
    await expect(new UrlTrustSource({ url, pins: [leafPin] }).load(signal())).resolves.toEqual([
      anchor.certificate.pem,
    ]);
    const intermediatePin = pki.intermediate.certificate.info.fingerprint256;
    await expect(new UrlTrustSource({ url, pins: [intermediatePin] }).load(signal())).resolves.toHaveLength(
      1,
    );
  });

  it('refuses a wrong pin (TRUST_PIN_MISMATCH) and a wrong root, and keeps the last good bundle', async () => {
    const anchor = await makeRoot('Published');
    const { url } = await bundleServer(anchor.certificate.pem);
    const stranger = await makePki();
    const wrongPin = new UrlTrustSource({ url, pins: [stranger.leaf.certificate.info.fingerprint256] });
    const pinError = await wrongPin.load(signal()).catch((e: CertkeeperError) => e);
    expect(pinError).toBeInstanceOf(CertkeeperError);
    expect((pinError as CertkeeperError).code).toBe('TRUST_PIN_MISMATCH');

    const wrongRoot = new UrlTrustSource({ url, ca: stranger.rootPem });
    await expect(wrongRoot.load(signal())).rejects.toMatchObject({ code: 'TRUST_SOURCE_FAILED' });

    // Through a store: the failure is an event, the other source's anchors stay.
    const store = new TrustStore({
      sources: [wrongPin, new UrlTrustSource({ url, ca: (await bundleServer('')).pki.rootPem, name: 'x' })],
    });
    const failures: string[] = [];
    store.on('sourceFailed', (e) => failures.push(`${e.source}:${e.error.details.causeCode}`));
    await expect(store.start()).rejects.toMatchObject({ code: 'TRUST_EMPTY' });
    expect(failures).toContain(`${wrongPin.name}:TRUST_PIN_MISMATCH`);
  });

  it('a CA pin is not satisfied by a forged leaf that names the pinned CA as issuer (signatures are checked)', async () => {
    const anchor = await makeRoot('Published');
    const real = await makePki({ names: ['127.0.0.1', 'localhost'] });
    // The attacker signs its own leaf with its own key, naming the real (public) intermediate as
    // issuer, and sends that intermediate along: names and key identifiers all line up.
    const attackerKey = await PrivateKey.generate();
    const forged = await makeLeaf(
      { key: attackerKey, certificate: real.intermediate.certificate },
      { names: ['127.0.0.1', 'localhost'] },
    );
    const server = https.createServer(
      { key: forged.key.toPem(), cert: forged.certificate.pem + real.intermediate.certificate.pem },
      (_req, res) => res.end(anchor.certificate.pem),
    );
    const port = await listen(server);
    cleanups.push(() => new Promise((r) => server.close(r)));
    const source = new UrlTrustSource({
      url: `https://127.0.0.1:${port}/bundle.pem`,
      pins: [real.intermediate.certificate.info.fingerprint256],
    });
    await expect(source.load(signal())).rejects.toMatchObject({
      code: 'TRUST_PIN_MISMATCH',
      message: expect.stringMatching(/by signature/),
    });
    // The genuine server behind the same pin is accepted.
    const genuine = await bundleServer(anchor.certificate.pem);
    const pinned = new UrlTrustSource({
      url: genuine.url,
      pins: [genuine.pki.intermediate.certificate.info.fingerprint256],
    });
    await expect(pinned.load(signal())).resolves.toEqual([anchor.certificate.pem]);
  });

  describe('a CA pin checks every link up to the pinned certificate, as a TLS client would', () => {
    const HOUR = 3_600_000;
    /** An HTTPS server presenting `chain` (leaf first) with `key`, answering a bundle. */
    async function presenting(chain: RawAuthority[]) {
      const anchor = await makeRoot('Published');
      const server = https.createServer(
        { key: chain[0]!.key.toPem(), cert: chain.map((c) => c.pem).join('') },
        (_req, res) => res.end(anchor.certificate.pem),
      );
      const port = await listen(server);
      cleanups.push(() => new Promise((r) => server.close(r)));
      return `https://127.0.0.1:${port}/bundle.pem`;
    }
    /** root → intermediate → leaf for 127.0.0.1, with twists; the server sends all three. */
    async function pinnedChain(twist: { root?: RawSpec; int?: RawSpec; leaf?: RawSpec } = {}) {
      const root = await rawCertificate({ basic: { ca: true }, commonName: 'Pinned Root', ...twist.root });
      const int = await rawCertificate({
        issuer: root,
        basic: { ca: true },
        commonName: 'Pinned CA',
        ...twist.int,
      });
      const leaf = await rawCertificate({
        issuer: int,
        san: ['IP:127.0.0.1'],
        eku: [OID.serverAuth],
        ...twist.leaf,
      });
      return { root, int, leaf, url: await presenting([leaf, int, root]) };
    }
    const pinTo = (url: string, pinned: RawAuthority, skewMs?: number) =>
      new UrlTrustSource({
        url,
        pins: [pinned.certificate.info.fingerprint256],
        ...(skewMs === undefined ? {} : { skewMs }),
      });
    const refused = (message: RegExp) => ({
      code: 'TRUST_PIN_MISMATCH',
      message: expect.stringMatching(message),
    });

    it('a sound chain is accepted, pinned at the root or at the intermediate', async () => {
      const { root, int, url } = await pinnedChain();
      await expect(pinTo(url, root).load(signal())).resolves.toHaveLength(1);
      await expect(pinTo(url, int).load(signal())).resolves.toHaveLength(1);
    });

    it('refuses a leaf signed by an end-entity certificate of the pinned CA (basicConstraints)', async () => {
      const root = await rawCertificate({ basic: { ca: true }, commonName: 'Pinned Root' });
      // An ordinary server certificate of the pinned CA, without keyUsage: its key signs a leaf.
      const endEntity = await rawCertificate({
        issuer: root,
        basic: { ca: false },
        keyUsage: null,
        commonName: 'www',
      });
      const leaf = await rawCertificate({ issuer: endEntity, san: ['IP:127.0.0.1'], eku: [OID.serverAuth] });
      const url = await presenting([leaf, endEntity, root]);
      await expect(pinTo(url, root).load(signal())).rejects.toMatchObject(refused(/not a CA/));
    });

    it('refuses an expired intermediate, an expired pinned root and an expired leaf (validity)', async () => {
      const expired = { notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - HOUR) };
      const a = await pinnedChain({ int: expired });
      await expect(pinTo(a.url, a.root).load(signal())).rejects.toMatchObject(refused(/expired/));
      const b = await pinnedChain({ root: expired });
      await expect(pinTo(b.url, b.root).load(signal())).rejects.toMatchObject(refused(/expired/));
      const c = await pinnedChain({ leaf: expired });
      await expect(pinTo(c.url, c.int).load(signal())).rejects.toMatchObject(refused(/expired/));
    });

    it('refuses a CA below a pathLen 0 intermediate (pathLen)', async () => {
      const root = await rawCertificate({ basic: { ca: true }, commonName: 'Pinned Root' });
      const int = await rawCertificate({
        issuer: root,
        basic: { ca: true, pathLength: 0 },
        commonName: 'Pinned CA',
      });
      const sub = await rawCertificate({ issuer: int, basic: { ca: true }, commonName: 'Sub CA' });
      const leaf = await rawCertificate({ issuer: sub, san: ['IP:127.0.0.1'], eku: [OID.serverAuth] });
      const url = await presenting([leaf, sub, int, root]);
      await expect(pinTo(url, root).load(signal())).rejects.toMatchObject(refused(/allows 0 CA/));
    });

    it('refuses an intermediate whose keyUsage does not allow certificate signing (keyUsage)', async () => {
      const { root, url } = await pinnedChain({ int: { keyUsage: x509.KeyUsageFlags.digitalSignature } });
      // Node does not even link the leaf to such an issuer in getPeerCertificate(true).
      await expect(pinTo(url, root).load(signal())).rejects.toMatchObject(
        refused(/keyCertSign|no presented certificate matches/),
      );
    });

    it('refuses a chain whose intermediate is restricted to client authentication (EKU)', async () => {
      const { root, url } = await pinnedChain({ int: { eku: [OID.clientAuth] } });
      await expect(pinTo(url, root).load(signal())).rejects.toMatchObject(refused(/serverAuth/));
    });

    it('forgives a notBefore inside the configured skew, and only inside it', async () => {
      const soon = { notBefore: new Date(Date.now() + 30_000), notAfter: new Date(Date.now() + 24 * HOUR) };
      const { root, url } = await pinnedChain({ int: soon });
      await expect(pinTo(url, root).load(signal())).resolves.toHaveLength(1); // default skew: 60 s
      await expect(pinTo(url, root, 0).load(signal())).rejects.toMatchObject(refused(/not valid before/));
      expect(() => pinTo(url, root, -1)).toThrow(/skewMs/);
    });
  });

  it('an error status or an HTML page is a source failure, never an empty bundle', async () => {
    const anchor = await makeRoot('Published');
    const { pki, url } = await bundleServer(anchor.certificate.pem);
    await expect(
      new UrlTrustSource({ url: url.replace('bundle.pem', 'missing'), ca: pki.rootPem }).load(signal()),
    ).rejects.toMatchObject({ code: 'TRUST_SOURCE_FAILED' });
    const html = await bundleServer('<html>oops</html>');
    const store = new TrustStore({ sources: [new UrlTrustSource({ url: html.url, ca: html.pki.rootPem })] });
    const failed = nextTrustEvent(store, 'sourceFailed');
    await expect(store.start()).rejects.toMatchObject({ code: 'TRUST_EMPTY' });
    expect((await failed).error.details.causeCode).toBe('MALFORMED_PEM');
  });

  it('a server trickling its bundle a byte at a time is cut off at timeoutMs: a source failure, not a hang', async () => {
    const pki = await makePki({ names: ['127.0.0.1', 'localhost'] });
    const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      const timer = setInterval(() => res.write('-'), 20); // each byte well inside any idle timeout
      res.on('close', () => clearInterval(timer));
    });
    const port = await listen(server);
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    const source = new UrlTrustSource({
      url: `https://127.0.0.1:${port}/bundle.pem`,
      ca: pki.rootPem,
      timeoutMs: 300,
    });
    await expect(source.load(signal())).rejects.toMatchObject({
      code: 'TRUST_SOURCE_FAILED',
      details: { source: source.name, reason: 'timeout' },
    });
  }, 10_000);

  it('validates its options', () => {
    expect(() => new UrlTrustSource({ url: 'http://x/bundle.pem', pins: ['00'.repeat(32)] })).toThrow(
      /https/,
    );
    expect(() => new UrlTrustSource({ url: 'https://x/bundle.pem' })).toThrow(/ca\/pins/);
    expect(() => new UrlTrustSource({ url: 'https://x/', pins: ['abc'] })).toThrow(/pins/);
  });
});

describe('BootstrapTrustSource', () => {
  it('trusts the root whose DER hashes to the fingerprint; a mismatch or impostor is refused', async () => {
    const ca = await FakeStepCa.start();
    cleanups.push(() => ca.stop());
    const source = new BootstrapTrustSource({ caUrl: ca.url, fingerprint: ca.rootFingerprint });
    const store = new TrustStore({ sources: [source] });
    await store.start();
    expect(store.current().fingerprints).toEqual([ca.rootFingerprint]);

    const wrong = new BootstrapTrustSource({ caUrl: ca.url, fingerprint: 'ab'.repeat(32) });
    await expect(wrong.load(signal())).rejects.toMatchObject({ code: 'ROOT_FINGERPRINT_MISMATCH' });

    // A man in the middle answering /root/{fp} with its own root: the hash check refuses it.
    const other = await makeRoot('Impostor');
    const expecting = new BootstrapTrustSource({
      caUrl: ca.url,
      fingerprint: other.certificate.info.fingerprint256,
    });
    ca.impostor = true;
    await expect(expecting.load(signal())).rejects.toMatchObject({ code: 'ROOT_FINGERPRINT_MISMATCH' });
  });
});
