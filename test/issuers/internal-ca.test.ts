// The embedded CA against real stores and real verifiers: FileStore on disk and MemoryStore for
// state, OpenSSL (`openssl verify`, `openssl crl`), validateBundle and Node TLS handshakes for
// whether what it signs is what a peer accepts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/clock.js';
import { createCsr } from '../../src/crypto/csr.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { validateBundle } from '../../src/crypto/validate.js';
import { InternalCA, type InternalCAOptions } from '../../src/issuers/internal-ca.js';
import type { CertificatePurpose, CertificateRequest, IssuerContext } from '../../src/issuers/issuer.js';
import { silentLogger } from '../../src/logger.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { LockLease, LockOptions, Store, StoreStat } from '../../src/store/store.js';
import { close, listen } from '../support/tls.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const temps: string[] = [];
const servers: tls.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix = 'certkeeper-ca-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

function context(store: Store, clock: Clock = systemClock): IssuerContext {
  return { store, clock, logger: silentLogger, signal: new AbortController().signal };
}

/** A clock stopped `offsetMs` ahead of real time (timers are the system's). */
function clockAhead(offsetMs: number): Clock {
  const at = Date.now() + offsetMs;
  return { ...systemClock, now: () => at };
}

async function request(names: string[], purpose: CertificatePurpose = 'server'): Promise<CertificateRequest> {
  const key = await PrivateKey.generate();
  return { id: names[0]!, names, purpose, keyType: key.type, key, csr: await createCsr({ key, names }) };
}

/** Issues for `names` and returns the parsed chain next to the key. */
async function issue(
  ca: InternalCA,
  store: Store,
  names: string[],
  purpose: CertificatePurpose = 'server',
  clock: Clock = systemClock,
) {
  const req = await request(names, purpose);
  const { chainPem } = await ca.issue(req, context(store, clock));
  const [leaf, ...rest] = parseCertificates(chainPem);
  return { key: req.key, chainPem, leaf: leaf!, chain: rest };
}

const text = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString('utf8'));
const caFile = (ca: InternalCA, file: string) => layout.ca(ca.name, file);
const caFiles = ['root.pem', 'root-key.pem', 'intermediate.pem', 'intermediate-key.pem'];

async function snapshot(ca: InternalCA, store: Store): Promise<Record<string, string | null>> {
  const entries = await Promise.all(caFiles.map(async (f) => [f, text(await store.get(caFile(ca, f)))]));
  return Object.fromEntries(entries);
}

/** A store that records every put and can hold a put at a gate: to count creations and open race windows. */
class ObservedStore implements Store {
  readonly puts: string[] = [];
  gate: ((key: string) => Promise<void>) | undefined;
  constructor(readonly inner: Store) {}
  get(key: string): Promise<Uint8Array | null> {
    return this.inner.get(key);
  }
  async put(key: string, value: Uint8Array | string): Promise<void> {
    this.puts.push(key);
    await this.gate?.(key);
    return this.inner.put(key, value);
  }
  delete(key: string): Promise<boolean> {
    return this.inner.delete(key);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  stat(key: string): Promise<StoreStat | null> {
    return this.inner.stat(key);
  }
  lock(name: string, options?: LockOptions): Promise<LockLease> {
    return this.inner.lock(name, options);
  }
  tryLock(name: string, options?: Omit<LockOptions, 'signal'>): Promise<LockLease | null> {
    return this.inner.tryLock(name, options);
  }
  renewLock(lease: LockLease, ttlMs?: number): Promise<LockLease> {
    return this.inner.renewLock(lease, ttlMs);
  }
  unlock(lease: LockLease): Promise<boolean> {
    return this.inner.unlock(lease);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  count(ca: InternalCA, file: string): number {
    return this.puts.filter((k) => k === caFile(ca, file)).length;
  }
}

function openssl(args: string[], input?: string): { ok: boolean; output: string } {
  const result = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 10_000 });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** `openssl verify -CAfile root -untrusted intermediate -purpose <purpose> leaf` (plus extra flags). */
function opensslVerify(
  pems: { root: string; intermediate: string; leaf: string },
  purpose: 'sslserver' | 'sslclient',
  extra: string[] = [],
): { ok: boolean; output: string } {
  const dir = tempDir('certkeeper-openssl-');
  const file = (name: string, pem: string) => {
    writeFileSync(join(dir, name), pem);
    return join(dir, name);
  };
  const args = [
    'verify',
    '-CAfile',
    file('root.pem', pems.root),
    '-untrusted',
    file('int.pem', pems.intermediate),
  ];
  const verdict = openssl([...args, '-purpose', purpose, ...extra, file('leaf.pem', pems.leaf)]);
  return { ok: verdict.ok && /: OK\s*$/.test(verdict.output), output: verdict.output };
}

const anyCode = (code: string) => expect.objectContaining({ code });
const sleep = (ms: number) => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms));

describe('creation of the CA', () => {
  it('creates root and intermediate on first use, once, and reuses them', async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const first = await issue(ca, store, ['a.test']);
    const created = await snapshot(ca, store);
    for (const f of caFiles) expect(created[f], f).toMatch(/^-----BEGIN /);
    for (let i = 0; i < 3; i++) await issue(ca, store, [`b${i}.test`]);
    expect(await snapshot(ca, store)).toEqual(created);
    expect(store.count(ca, 'root.pem')).toBe(1);
    expect(store.count(ca, 'intermediate.pem')).toBe(1);
    expect(await ca.rootCertificate()).toBe(created['root.pem']);
    expect(await ca.trustAnchors(context(store))).toEqual([created['root.pem']]);
    expect(first.chain[0]!.pem).toBe(created['intermediate.pem']);
  });

  it('10 parallel first issuances on a FileStore create exactly one root and one intermediate', async () => {
    const store = new ObservedStore(new FileStore({ directory: tempDir() }));
    const ca = new InternalCA();
    const issued = await Promise.all(Array.from({ length: 10 }, (_, i) => issue(ca, store, [`p${i}.test`])));
    expect(store.count(ca, 'root.pem')).toBe(1);
    expect(store.count(ca, 'root-key.pem')).toBe(1);
    expect(store.count(ca, 'intermediate.pem')).toBe(1);
    const { 'root.pem': root, 'intermediate.pem': intermediate } = await snapshot(ca, store);
    for (const leaf of issued) {
      expect(leaf.chain[0]!.pem).toBe(intermediate);
      expect(
        validateBundle({
          key: leaf.key,
          chain: leaf.chainPem,
          trustAnchors: root!,
          names: leaf.leaf.info.names,
        }),
      ).toMatchObject({ ok: true });
    }
  });

  it('two InternalCA objects (two FileStores on one directory, as two replicas) create one root', async () => {
    const directory = tempDir();
    const storeA = new ObservedStore(new FileStore({ directory }));
    const storeB = new ObservedStore(new FileStore({ directory }));
    const a = new InternalCA({ store: storeA });
    const b = new InternalCA({ store: storeB });
    const [rootA, leafB, rootB, leafA] = await Promise.all([
      a.rootCertificate(),
      issue(b, storeB, ['b.test']),
      b.rootCertificate(),
      issue(a, storeA, ['a.test']),
    ]);
    expect(storeA.count(a, 'root.pem') + storeB.count(b, 'root.pem')).toBe(1);
    expect(storeA.count(a, 'intermediate.pem') + storeB.count(b, 'intermediate.pem')).toBe(1);
    expect(rootB).toBe(rootA);
    expect(leafA.chain[0]!.pem).toBe(leafB.chain[0]!.pem);
    for (const leaf of [leafA, leafB]) {
      expect(validateBundle({ key: leaf.key, chain: leaf.chainPem, trustAnchors: rootA })).toMatchObject({
        ok: true,
      });
    }
  });

  it('the root is stable across new InternalCA objects on the same store directory', async () => {
    const directory = tempDir();
    const root = await new InternalCA().rootCertificate(new FileStore({ directory }));
    const store = new FileStore({ directory });
    const again = new InternalCA();
    expect(await again.rootCertificate(store)).toBe(root);
    const leaf = await issue(again, store, ['later.test']);
    expect(validateBundle({ key: leaf.key, chain: leaf.chainPem, trustAnchors: root })).toMatchObject({
      ok: true,
    });
    // A CA of another name in the same store is another CA.
    expect(await new InternalCA({ name: 'other' }).rootCertificate(store)).not.toBe(root);
  });

  it('keeps keys at 0600 in 0700 directories of a FileStore, whatever the umask', async () => {
    const directory = join(tempDir(), 'store'); // created by the store itself
    const previous = process.umask(0);
    try {
      const ca = new InternalCA({ name: 'perm' });
      const store = new FileStore({ directory });
      await issue(ca, store, ['perm.test']);
      await ca.revoke(
        { chainPem: (await issue(ca, store, ['gone.test'])).chainPem },
        'superseded',
        context(store),
      );
    } finally {
      process.umask(previous);
    }
    const mode = (path: string) => statSync(path).mode & 0o777;
    const caDir = join(directory, 'ca', 'perm');
    expect(readdirSync(caDir).sort()).toEqual([...caFiles, 'revoked.json'].sort());
    for (const file of readdirSync(caDir)) expect(mode(join(caDir, file)).toString(8), file).toBe('600');
    for (const dir of [directory, join(directory, 'ca'), caDir])
      expect(mode(dir).toString(8), dir).toBe('700');
  });
});

describe('issued leaves', () => {
  it('carry the requested names, CN, lifetime (backdated), serverAuth, AKI and the chain', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ lifetimeMs: 2 * HOUR });
    const names = ['svc.test', '*.svc.test', '10.0.0.7', '::1'];
    const before = Date.now();
    const { key, chainPem, leaf, chain } = await issue(ca, store, names);
    const after = Date.now();
    const root = await ca.rootCertificate();
    const intermediate = chain[0]!;

    expect(leaf.info.dnsNames).toEqual(['svc.test', '*.svc.test']);
    expect(leaf.info.ipAddresses).toEqual(['10.0.0.7', '::1']);
    expect(leaf.info.commonName).toBe('svc.test');
    expect(leaf.info.isCA).toBe(false);
    expect(leaf.info.lifetimeMs).toBe(2 * HOUR);
    // Backdated by a minute (certificate times have second precision).
    expect(leaf.info.notBefore.getTime()).toBeGreaterThanOrEqual(Math.floor((before - MINUTE) / 1000) * 1000);
    expect(leaf.info.notBefore.getTime()).toBeLessThanOrEqual(after - MINUTE);
    expect(leaf.info.extKeyUsage).toEqual(['serverAuth']);
    expect(leaf.info.authorityKeyId).toBe(intermediate.info.subjectKeyId);
    expect(leaf.info.authorityKeyId).not.toBeNull();
    expect(chain).toHaveLength(1);
    expect(intermediate.pem).toBe(text(await store.get(caFile(ca, 'intermediate.pem'))));
    expect(intermediate.info.isCA).toBe(true);

    expect(
      validateBundle({ key, chain: chainPem, names, purpose: 'server', trustAnchors: root }),
    ).toMatchObject({ ok: true });
    expect(
      validateBundle({ key, chain: chainPem, names, purpose: 'client', trustAnchors: root }),
    ).toMatchObject({
      ok: false,
      error: anyCode('WRONG_PURPOSE'),
    });
    const pems = { root, intermediate: intermediate.pem, leaf: leaf.pem };
    expect(opensslVerify(pems, 'sslserver')).toMatchObject({ ok: true });
    expect(opensslVerify(pems, 'sslclient')).toMatchObject({
      ok: false,
      output: /unsupported certificate purpose/,
    });
    // Not anchored at some other root.
    const stranger = await new InternalCA().rootCertificate(new MemoryStore());
    expect(opensslVerify({ ...pems, root: stranger }, 'sslserver').ok).toBe(false);
  });

  it('client certificates get clientAuth only and verify for sslclient, not sslserver', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const { key, chainPem, leaf, chain } = await issue(ca, store, ['worker-7'], 'client');
    const root = await ca.rootCertificate();
    expect(leaf.info.extKeyUsage).toEqual(['clientAuth']);
    expect(leaf.info.commonName).toBe('worker-7');
    expect(validateBundle({ key, chain: chainPem, purpose: 'client', trustAnchors: root })).toMatchObject({
      ok: true,
    });
    const pems = { root, intermediate: chain[0]!.pem, leaf: leaf.pem };
    expect(opensslVerify(pems, 'sslclient')).toMatchObject({ ok: true });
    expect(opensslVerify(pems, 'sslserver')).toMatchObject({
      ok: false,
      output: /unsupported certificate purpose/,
    });
  });

  it("extKeyUsage 'both' gives both EKUs whatever the purpose", async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ extKeyUsage: 'both' });
    const root = await ca.rootCertificate(store);
    for (const purpose of ['server', 'client'] as const) {
      const { key, chainPem, leaf, chain } = await issue(ca, store, ['peer.test'], purpose);
      expect(leaf.info.extKeyUsage).toEqual(['serverAuth', 'clientAuth']);
      expect(validateBundle({ key, chain: chainPem, purpose: 'both', trustAnchors: root })).toMatchObject({
        ok: true,
      });
      const pems = { root, intermediate: chain[0]!.pem, leaf: leaf.pem };
      expect(opensslVerify(pems, 'sslserver').ok).toBe(true);
      expect(opensslVerify(pems, 'sslclient').ok).toBe(true);
    }
  });

  it('an IP-only certificate verifies and is served for its address', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const { key, chainPem, leaf, chain } = await issue(ca, store, ['127.0.0.1']);
    const root = await ca.rootCertificate();
    expect(leaf.info.names).toEqual(['127.0.0.1']);
    const pems = { root, intermediate: chain[0]!.pem, leaf: leaf.pem };
    expect(opensslVerify(pems, 'sslserver', ['-verify_ip', '127.0.0.1'])).toMatchObject({ ok: true });
    expect(opensslVerify(pems, 'sslserver', ['-verify_ip', '127.0.0.2']).ok).toBe(false);
    const server = tls.createServer({ key: key.toPem(), cert: chainPem }, (s) => s.end('ok'));
    servers.push(server);
    const port = await listen(server);
    // No SNI (an IP cannot be one): Node checks the address against the IP SANs.
    expect(await connect(port, { ca: root, servername: undefined })).toEqual({ data: 'ok' });
  });

  it.each([
    [1_000, 100],
    [MINUTE, 6_000],
    [undefined, MINUTE], // default: 24 h
  ])('lifetimeMs %s is honoured exactly, backdated by %i ms', async (lifetimeMs, backdate) => {
    const store = new MemoryStore();
    const options: InternalCAOptions = lifetimeMs === undefined ? {} : { lifetimeMs };
    const ca = new InternalCA(options);
    const before = Date.now();
    const { leaf } = await issue(ca, store, ['life.test']);
    expect(leaf.info.lifetimeMs).toBe(lifetimeMs ?? 24 * HOUR);
    // Certificate times are whole seconds; the backdate is exact up to that truncation.
    const expectedNotBefore = before - backdate;
    expect(leaf.info.notBefore.getTime()).toBeGreaterThan(expectedNotBefore - 1_000 - 50);
    expect(leaf.info.notBefore.getTime()).toBeLessThanOrEqual(Date.now() - backdate);
  });
});

describe('requests and options are checked', () => {
  it('refuses a CSR whose signature does not match its content (ISSUER_FAILED)', async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const req = await request(['good.test']);
    const der = Buffer.from(req.csr.der);
    const at = der.indexOf('good.test');
    expect(at).toBeGreaterThan(0);
    der.write('evil', at); // tampered after signing: same length, DER still well-formed
    const tampered = { ...req, names: ['evil.test'], csr: { ...req.csr, der } };
    await expect(ca.issue(tampered, context(store))).rejects.toMatchObject({
      code: 'ISSUER_FAILED',
      message: expect.stringMatching(/CSR signature/),
    });
    // The untampered CSR goes through: the refusal was the signature, nothing else.
    await expect(ca.issue(req, context(store))).resolves.toMatchObject({ chainPem: expect.any(String) });
  });

  it.each<[InternalCAOptions, string]>([
    [{ lifetimeMs: 0 }, 'lifetimeMs'],
    [{ lifetimeMs: 999 }, 'lifetimeMs'],
    [{ lifetimeMs: Number.NaN }, 'lifetimeMs'],
    [{ name: 'a/b' }, 'name'],
    [{ name: '..' }, 'name'],
    [{ name: '' }, 'name'],
    [{ lifetimeMs: HOUR, intermediateLifetimeMs: HOUR }, 'intermediateLifetimeMs'],
    [{ lifetimeMs: HOUR, intermediateLifetimeMs: MINUTE }, 'intermediateLifetimeMs'],
    [{ intermediateLifetimeMs: 400 * 24 * HOUR, rootLifetimeMs: 365 * 24 * HOUR }, 'intermediateLifetimeMs'],
    [{ keyType: 'rsa-1024' as never }, 'keyType'],
    [{ extKeyUsage: 'any' as never }, 'extKeyUsage'],
  ])('%j → INVALID_OPTION naming %s', (options, name) => {
    expect(() => new InternalCA(options)).toThrowError(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(new RegExp(`option ${name} `)),
      }),
    );
  });

  it('accepts the smallest allowed lifetime (1 s)', () => {
    expect(new InternalCA({ lifetimeMs: 1_000 }).lifetimeMs).toBe(1_000);
  });
});

describe('damaged CA material', () => {
  type Damage = (store: Store, ca: InternalCA, which: 'root' | 'intermediate') => Promise<void>;
  const damages: [string, Damage][] = [
    [
      'garbage PEM',
      (s, ca, w) => s.put(caFile(ca, `${w}.pem`), '-----BEGIN CERTIFICATE-----\nnot base64!\n'),
    ],
    ['not PEM at all', (s, ca, w) => s.put(caFile(ca, `${w}.pem`), 'hello'.repeat(20))],
    [
      'key of another certificate',
      async (s, ca, w) => s.put(caFile(ca, `${w}-key.pem`), (await PrivateKey.generate()).toPem()),
    ],
    ['missing key', async (s, ca, w) => void (await s.delete(caFile(ca, `${w}-key.pem`)))],
    ['garbage key', (s, ca, w) => s.put(caFile(ca, `${w}-key.pem`), 'not a key')],
  ];

  it.each(damages)(
    'root with %s: CA_CORRUPT everywhere, and the root is never replaced',
    async (_, damage) => {
      const store = new FileStore({ directory: tempDir() });
      const ca = new InternalCA();
      await ca.rootCertificate(store); // root only: the next issuance must build the intermediate from it
      await damage(store, ca, 'root');
      const damaged = await snapshot(ca, store);
      const corrupt = {
        code: 'CA_CORRUPT',
        details: { which: 'root' },
        message: expect.stringMatching(/root/),
      };
      await expect(issue(ca, store, ['x.test'])).rejects.toMatchObject(corrupt);
      await expect(ca.rootCertificate()).rejects.toMatchObject(corrupt);
      await expect(ca.trustAnchors(context(store))).rejects.toMatchObject(corrupt);
      await expect(ca.rotateIntermediate(store)).rejects.toMatchObject(corrupt);
      await expect(new InternalCA().rootCertificate(store)).rejects.toMatchObject(corrupt);
      expect(await snapshot(ca, store)).toEqual(damaged);
    },
  );

  it.each(damages)('intermediate with %s: CA_CORRUPT, root untouched', async (_, damage) => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    await issue(ca, store, ['first.test']);
    const root = text(await store.get(caFile(ca, 'root.pem')));
    await damage(store, ca, 'intermediate');
    const damaged = await snapshot(ca, store);
    const corrupt = { code: 'CA_CORRUPT', details: { which: 'intermediate' } };
    await expect(issue(ca, store, ['x.test'])).rejects.toMatchObject(corrupt);
    await expect(ca.crl()).rejects.toMatchObject(corrupt);
    expect(await snapshot(ca, store)).toEqual(damaged);
    expect(await ca.rootCertificate()).toBe(root);
  });

  it('never prints key material in the error', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    await ca.rootCertificate(store);
    const key = (await PrivateKey.generate()).toPem();
    await store.put(caFile(ca, 'root-key.pem'), key);
    const error = await ca.rootCertificate().catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'CA_CORRUPT' });
    expect(
      JSON.stringify({
        message: (error as Error).message,
        details: (error as unknown as { details: unknown }).details,
      }),
    ).not.toMatch(/PRIVATE KEY|MIG/);
  });
});

describe('intermediates', () => {
  it('rotateIntermediate: a new intermediate from the same root; old and new leaves both verify', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const old = await issue(ca, store, ['rot.test']);
    const root = await ca.rootCertificate();
    await ca.rotateIntermediate(store);
    const fresh = await issue(ca, store, ['rot.test']);
    const [oldInt, newInt] = [old.chain[0]!, fresh.chain[0]!];

    expect(newInt.info.serialNumber).not.toBe(oldInt.info.serialNumber);
    expect(newInt.info.subjectKeyId).not.toBe(oldInt.info.subjectKeyId);
    expect(newInt.pem).toBe(text(await store.get(caFile(ca, 'intermediate.pem'))));
    expect(newInt.info.authorityKeyId).toBe(oldInt.info.authorityKeyId); // same root
    expect(fresh.leaf.info.authorityKeyId).toBe(newInt.info.subjectKeyId);
    expect(await ca.rootCertificate()).toBe(root);

    expect(opensslVerify({ root, intermediate: newInt.pem, leaf: fresh.leaf.pem }, 'sslserver').ok).toBe(
      true,
    );
    expect(opensslVerify({ root, intermediate: oldInt.pem, leaf: old.leaf.pem }, 'sslserver').ok).toBe(true);
    // The chains are not interchangeable: a leaf verifies only through its own intermediate.
    expect(opensslVerify({ root, intermediate: newInt.pem, leaf: old.leaf.pem }, 'sslserver').ok).toBe(false);
    for (const leaf of [old, fresh]) {
      expect(validateBundle({ key: leaf.key, chain: leaf.chainPem, trustAnchors: root })).toMatchObject({
        ok: true,
      });
    }
  });

  it('an issuance during a rotation is not mistaken for a damaged CA', async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const before = await issue(ca, store, ['race.test']);
    // Hold the rotation between writing the new intermediate key and its certificate.
    let release!: () => void;
    let paused!: () => void;
    const pausedAt = new Promise<void>((resolve) => {
      paused = resolve;
    });
    store.gate = async (key) => {
      if (key !== caFile(ca, 'intermediate.pem')) return;
      paused();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    };
    const rotation = ca.rotateIntermediate(store);
    await pausedAt;
    const during = issue(ca, store, ['race.test']);
    const early = await Promise.race([
      during.then(
        () => 'issued',
        () => 'failed',
      ),
      sleep(100),
    ]);
    release();
    store.gate = undefined;
    await rotation;
    // It waited for the rotation (it holds the lock) instead of failing or signing with the old one.
    expect(early).toBeUndefined();
    const after = await during;
    const current = text(await store.get(caFile(ca, 'intermediate.pem')));
    expect(after.chain[0]!.pem).toBe(current);
    expect(after.chain[0]!.pem).not.toBe(before.chain[0]!.pem);
  });

  it('an intermediate close to expiry is re-issued from the same root, once', async () => {
    const store = new ObservedStore(new MemoryStore());
    // 1 min intermediate (plus its 1 min backdate): re-issued when less than 40 s remain. (Leaves
    // of 2 s, not 1 s: whole-second certificate times can leave a 1 s leaf expired on arrival.)
    const ca = new InternalCA({ lifetimeMs: 2_000, intermediateLifetimeMs: MINUTE });
    const first = await issue(ca, store, ['renew.test']);
    const root = await ca.rootCertificate();
    const still = await issue(ca, store, ['renew.test'], 'server', clockAhead(10_000));
    expect(still.chain[0]!.pem).toBe(first.chain[0]!.pem);
    expect(store.count(ca, 'intermediate.pem')).toBe(1);

    const ahead = clockAhead(30_000);
    const later = await issue(ca, store, ['renew.test'], 'server', ahead);
    const renewed = later.chain[0]!;
    expect(store.count(ca, 'intermediate.pem')).toBe(2);
    expect(renewed.pem).not.toBe(first.chain[0]!.pem);
    expect(renewed.pem).toBe(text(await store.get(caFile(ca, 'intermediate.pem'))));
    expect(renewed.info.notAfter.getTime()).toBeGreaterThan(first.chain[0]!.info.notAfter.getTime() + 20_000);
    expect(later.leaf.info.authorityKeyId).toBe(renewed.info.subjectKeyId);
    expect(await ca.rootCertificate()).toBe(root);
    const at = new Date(ahead.now());
    expect(
      validateBundle({ key: later.key, chain: later.chainPem, trustAnchors: root, now: at }),
    ).toMatchObject({
      ok: true,
    });
    const attime = ['-attime', String(Math.floor(at.getTime() / 1000))];
    expect(
      opensslVerify({ root, intermediate: renewed.pem, leaf: later.leaf.pem }, 'sslserver', attime).ok,
    ).toBe(true);
    // The fresh one is kept: no re-issue on every call.
    await issue(ca, store, ['renew.test'], 'server', ahead);
    expect(store.count(ca, 'intermediate.pem')).toBe(2);
  });
});

/** A TLS client; resolves with what the server sent, or the error that ended the connection. */
function connect(port: number, options: tls.ConnectionOptions): Promise<{ data?: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      data += chunk;
    });
    socket.on('end', () => resolve(data ? { data } : { error: 'closed without data' }));
    socket.on('error', (error) => resolve({ error: error.message }));
    socket.setTimeout(5_000, () => socket.destroy(new Error('timeout')));
  });
}

describe('revocation', () => {
  it('revoke records the serial once; crl() lists it with its reason, signed by the intermediate', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const kept = await issue(ca, store, ['kept'], 'client');
    const gone = await issue(ca, store, ['gone'], 'client');
    const ctx = context(store);
    await ca.revoke({ chainPem: gone.chainPem }, 'keyCompromise', ctx);
    await ca.revoke({ chainPem: gone.chainPem }, 'superseded', ctx); // already revoked: unchanged
    expect(await ca.revokedSerials()).toEqual([gone.leaf.info.serialNumber]);

    const crl = await ca.crl();
    expect(crl).toMatch(/^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/);
    const shown = openssl(['crl', '-noout', '-text'], crl);
    expect(shown.ok, shown.output).toBe(true);
    expect(shown.output).toContain(`Serial Number: ${gone.leaf.info.serialNumber.toUpperCase()}`);
    expect(shown.output).not.toContain(kept.leaf.info.serialNumber.toUpperCase());
    expect(shown.output).toMatch(/CRL Reason Code:\s*\n\s*Key Compromise/);
    expect(shown.output).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Intermediate CA/);

    const root = await ca.rootCertificate();
    const dir = tempDir('certkeeper-openssl-');
    writeFileSync(join(dir, 'chain.pem'), gone.chain[0]!.pem + root);
    writeFileSync(join(dir, 'root.pem'), root);
    const verified = openssl(['crl', '-noout', '-CAfile', join(dir, 'chain.pem'), '-verify'], crl);
    expect(verified.output).toMatch(/verify OK/);
    // Signed by the intermediate, not the root: the root alone cannot verify it.
    expect(openssl(['crl', '-noout', '-CAfile', join(dir, 'root.pem'), '-verify'], crl).output).not.toMatch(
      /verify OK/,
    );

    // OpenSSL's own revocation check of the leaves.
    const crlFile = join(dir, 'crl.pem');
    writeFileSync(crlFile, crl);
    const check = ['-CRLfile', crlFile, '-crl_check'];
    const pems = (l: typeof kept) => ({ root, intermediate: l.chain[0]!.pem, leaf: l.leaf.pem });
    expect(opensslVerify(pems(kept), 'sslclient', check).ok).toBe(true);
    expect(opensslVerify(pems(gone), 'sslclient', check)).toMatchObject({
      ok: false,
      output: /certificate revoked/,
    });
  });

  it('a Node TLS server with crls() refuses the revoked client certificate and accepts the others', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    const server = await issue(ca, store, ['localhost'], 'server');
    const kept = await issue(ca, store, ['kept'], 'client');
    const gone = await issue(ca, store, ['gone'], 'client');
    await ca.revoke({ chainPem: gone.chainPem }, 'keyCompromise', context(store));
    const root = await ca.rootCertificate();
    const crl = await ca.crls();
    expect(crl).toHaveLength(2);
    const [leaves, intermediates] = crl.map((pem) => openssl(['crl', '-noout', '-text'], pem).output);
    expect(leaves).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Intermediate CA/);
    expect(leaves).toContain(`Serial Number: ${gone.leaf.info.serialNumber.toUpperCase()}`);
    expect(intermediates).toMatch(/Issuer: CN\s*=\s*certkeeper-internal Root CA/);
    expect(intermediates).toContain('No Revoked Certificates');

    // `strict` is a real mTLS server; the lenient one lets the handshake finish and says why not.
    const serve = async (crls: string[] | undefined, strict = true) => {
      const tlsServer = tls.createServer(
        {
          key: server.key.toPem(),
          cert: server.chainPem,
          ca: root,
          ...(crls ? { crl: crls } : {}),
          requestCert: true,
          rejectUnauthorized: strict,
        },
        (socket) =>
          socket.end(
            socket.authorized
              ? `hello ${socket.getPeerCertificate().subject.CN}`
              : `refused: ${socket.authorizationError}`,
          ),
      );
      servers.push(tlsServer);
      return listen(tlsServer);
    };
    const client = (leaf: typeof kept) => ({ ca: root, key: leaf.key.toPem(), cert: leaf.chainPem });

    const checked = await serve(crl);
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      expect(await connect(checked, { ...client(kept), maxVersion })).toEqual({ data: 'hello kept' });
      const refused = await connect(checked, { ...client(gone), maxVersion });
      expect(refused.data).toBeUndefined();
      expect(refused.error).toEqual(expect.any(String));
    }
    // Why: the revocation, nothing else.
    const lenient = await serve(crl, false);
    expect(await connect(lenient, client(gone))).toEqual({ data: 'refused: CERT_REVOKED' });
    expect(await connect(lenient, client(kept))).toEqual({ data: 'hello kept' });
    // The leaf CRL alone is not enough for Node (it checks a CRL for every CA certificate).
    const leafOnly = await serve([crl[0]!], false);
    expect(await connect(leafOnly, client(kept))).toEqual({ data: 'refused: UNABLE_TO_GET_CRL' });
    // Control: without CRLs the revoked certificate is accepted.
    expect(await connect(await serve(undefined), client(gone))).toEqual({ data: 'hello gone' });
  });
});
