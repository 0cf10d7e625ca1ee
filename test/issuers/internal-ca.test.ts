// The embedded CA against real stores and real verifiers: FileStore on disk and MemoryStore for
// state, OpenSSL (`openssl verify`, `openssl crl`), validateBundle and Node TLS handshakes for
// whether what it signs is what a peer accepts.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { PrivateKey } from '../../src/crypto/keys.js';
import { validateBundle } from '../../src/crypto/validate.js';
import { InternalCA, type InternalCAOptions } from '../../src/issuers/internal-ca.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { listen } from '../support/tls.js';
import {
  caFile,
  cleanupAfterEach,
  clockAhead,
  connect,
  context,
  HOUR,
  issue,
  MINUTE,
  ObservedStore,
  opensslVerify,
  request,
  servers,
  tempDir,
  text,
} from './internal-ca-support.js';

cleanupAfterEach();

/** The CA's one record (sealed where the store encrypts) and the readable copies of its certificates. */
const caFiles = ['intermediate.pem', 'root.pem', 'state.key'];

async function snapshot(ca: InternalCA, store: Store): Promise<Record<string, string | null>> {
  const entries = await Promise.all(caFiles.map(async (f) => [f, text(await store.get(caFile(ca, f)))]));
  return Object.fromEntries(entries);
}

const anyCode = (code: string) => expect.objectContaining({ code });

describe('creation of the CA', () => {
  it('creates root and intermediate on first use, once, and reuses them', async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const first = await issue(ca, store, ['a.test']);
    const created = await snapshot(ca, store);
    for (const f of ['root.pem', 'intermediate.pem']) expect(created[f], f).toMatch(/^-----BEGIN /);
    expect(layout.isSensitive(caFile(ca, 'state.key'))).toBe(true); // sealed by encrypting stores
    expect(JSON.parse(created['state.key']!)).toMatchObject({ version: 1 });
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
    expect(store.count(ca, 'state.key')).toBe(1);
    expect(store.count(ca, 'root.pem')).toBe(1);
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
    expect(storeA.count(a, 'state.key') + storeB.count(b, 'state.key')).toBe(1);
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
    expect(readdirSync(caDir).sort()).toEqual(caFiles);
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
  // biome-ignore lint/suspicious/noExplicitAny: a JSON record edited by hand
  type Record = any;
  type Damage = (store: Store, ca: InternalCA) => Promise<void>;
  /** Rewrites one part of the state record (MemoryStore and FileStore hold it in plaintext). */
  const edit =
    (change: (record: Record) => Promise<void> | void): Damage =>
    async (s, ca) => {
      const record = JSON.parse(text(await s.get(caFile(ca, 'state.key')))!);
      await change(record);
      await s.put(caFile(ca, 'state.key'), JSON.stringify(record));
    };
  const other = () => PrivateKey.generate().then((k) => k.toPem());
  const strangerIntermediate = async () => {
    const stranger = new InternalCA();
    const store = new MemoryStore();
    await stranger.rootCertificate(store);
    return JSON.parse(text(await store.get(caFile(stranger, 'state.key')))!).intermediate;
  };
  const damages: [string, string, Damage][] = [
    ['not JSON', 'state.key', (s, ca) => s.put(caFile(ca, 'state.key'), 'hello'.repeat(20))],
    [
      'an unknown format',
      'state.key',
      edit((r) => {
        r.format = 99;
      }),
    ],
    [
      'garbage root PEM',
      'root',
      edit((r) => {
        r.root.cert = '-----BEGIN CERTIFICATE-----\nnot base64!\n';
      }),
    ],
    [
      'the key of another root',
      'root',
      edit(async (r) => {
        r.root.key = await other();
      }),
    ],
    [
      'a missing root key',
      'root',
      edit((r) => {
        delete r.root.key;
      }),
    ],
    [
      'garbage intermediate key',
      'intermediate',
      edit((r) => {
        r.intermediate.key = 'not a key';
      }),
    ],
    [
      'the key of another intermediate',
      'intermediate',
      edit(async (r) => {
        r.intermediate.key = await other();
      }),
    ],
    [
      'an intermediate of another CA',
      'intermediate',
      edit(async (r) => {
        r.intermediate = await strangerIntermediate();
      }),
    ],
    [
      'a damaged revocation list',
      'revoked',
      edit((r) => {
        r.revoked = [{ serial: 'zz' }];
      }),
    ],
  ];

  it.each(damages)(
    'a state record with %s: CA_CORRUPT everywhere, and nothing is replaced',
    async (_, which, damage) => {
      const store = new FileStore({ directory: tempDir() });
      const ca = new InternalCA();
      await issue(ca, store, ['first.test']);
      await damage(store, ca);
      const damaged = await snapshot(ca, store);
      const corrupt = { code: 'CA_CORRUPT', details: { which } };
      await expect(issue(ca, store, ['x.test'])).rejects.toMatchObject(corrupt);
      await expect(ca.rootCertificate()).rejects.toMatchObject(corrupt);
      await expect(ca.trustAnchors(context(store))).rejects.toMatchObject(corrupt);
      await expect(ca.rotateIntermediate(store)).rejects.toMatchObject(corrupt);
      await expect(ca.crl()).rejects.toMatchObject(corrupt);
      await expect(new InternalCA().rootCertificate(store)).rejects.toMatchObject(corrupt);
      expect(await snapshot(ca, store)).toEqual(damaged);
    },
  );

  it('never prints key material in the error', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA();
    await ca.rootCertificate(store);
    await edit(async (r) => {
      r.root.key = await other();
    })(store, ca);
    const error = await new InternalCA().rootCertificate(store).catch((e: Error) => e);
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

  it('an issuance during a rotation signs with the old CA or the new one, never a mix', async () => {
    const store = new ObservedStore(new MemoryStore());
    const ca = new InternalCA();
    const before = await issue(ca, store, ['race.test']);
    // Hold the rotation at its commit (the one write of the new state).
    let release!: () => void;
    let paused!: () => void;
    const pausedAt = new Promise<void>((resolve) => {
      paused = resolve;
    });
    store.gate = async (key) => {
      if (key !== caFile(ca, 'state.key')) return;
      paused();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    };
    const rotation = ca.rotateIntermediate(store);
    await pausedAt;
    // Not committed: the old intermediate signs, at once (no lock needed to read).
    const during = await issue(ca, store, ['race.test']);
    expect(during.chain[0]!.pem).toBe(before.chain[0]!.pem);
    release();
    store.gate = undefined;
    await rotation;
    const after = await issue(ca, store, ['race.test']);
    const current = text(await store.get(caFile(ca, 'intermediate.pem')));
    expect(after.chain[0]!.pem).toBe(current);
    expect(after.chain[0]!.pem).not.toBe(before.chain[0]!.pem);
    const root = await ca.rootCertificate();
    for (const leaf of [before, during, after]) {
      expect(validateBundle({ key: leaf.key, chain: leaf.chainPem, trustAnchors: root })).toMatchObject({
        ok: true,
      });
    }
  });

  it('an intermediate close to expiry is re-issued from the same root, once', async () => {
    const store = new ObservedStore(new MemoryStore());
    // 1 min intermediate: re-issued when less than 20 s remain (10 leaf lifetimes, or a third of
    // its life). (Leaves of 2 s, not 1 s: whole-second certificate times can leave a 1 s leaf
    // expired on arrival.)
    const ca = new InternalCA({ lifetimeMs: 2_000, intermediateLifetimeMs: MINUTE });
    const first = await issue(ca, store, ['renew.test']);
    const root = await ca.rootCertificate();
    const still = await issue(ca, store, ['renew.test'], 'server', clockAhead(10_000));
    expect(still.chain[0]!.pem).toBe(first.chain[0]!.pem);
    expect(store.count(ca, 'intermediate.pem')).toBe(1);

    const ahead = clockAhead(45_000);
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
