// TLS-ALPN-01 challenge records are read from a store every replica can write (issue 12, item 2):
// whoever can write the shared store could plant `{key, cert, ca}` for any name, or engine options
// that make OpenSSL load a shared object, and every replica put them into tls.createSecureContext.
// Now a replica accepts only `{key, cert}` PEM strings making a genuine RFC 8737 challenge
// certificate (self-signed, one SAN equal to the name, critical acmeIdentifier, matching key) for a
// name it answers TLS-ALPN-01 for, and the record is sealed whenever the store has encryption
// keys, so a writer without them cannot plant one at all. Planted in a real Redis (own prefix) and
// in a FileStore directory (files written next to certkeeper's), with a second replica loading.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChallengeContext, ChallengeTask } from '../../src/challenges/solver.js';
import { alpnRecordKey } from '../../src/challenges/tls-alpn-01/record.js';
import { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import {
  alpnServerName,
  createAlpnCertificate,
  ID_PE_ACME_IDENTIFIER,
  TlsAlpn01Solver,
} from '../../src/challenges/tls-alpn-01/solver.js';
import { systemClock } from '../../src/clock.js';
import { liveMembers } from '../../src/cluster/membership.js';
import { ClusterSync } from '../../src/cluster/sync.js';
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { x509 } from '../../src/crypto/x509.js';
import type { Logger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { LockOptions, Store, StoreChangeListener, WriteOptions } from '../../src/store/store.js';
import { makeRoot } from '../support/pki.js';
import { eventually, redisPeer } from '../support/services.js';

const redisUrl = await redisPeer();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const MANAGED = ['a.test', 'b.test', '192.0.2.7'];
const KEY = randomBytes(32).toString('base64');

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/**
 * A store shared through a directory (several processes on one host, or a network file system),
 * with the change notifications a watcher of that directory would give: changes made through it,
 * and `resync()` for what was written to the directory behind its back.
 */
class Notifying implements Store {
  readonly #listeners = new Set<{ prefix: string; listener: StoreChangeListener }>();
  constructor(readonly inner: Store) {}
  get(key: string) {
    return this.inner.get(key);
  }
  async put(key: string, value: Uint8Array | string, options?: WriteOptions) {
    await this.inner.put(key, value, options);
    this.#changed(key);
  }
  async delete(key: string, options?: WriteOptions) {
    const existed = await this.inner.delete(key, options);
    if (existed) this.#changed(key);
    return existed;
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
  lock(name: string, options?: LockOptions) {
    return this.inner.lock(name, options);
  }
  tryLock(name: string, options?: Omit<LockOptions, 'signal'>) {
    return this.inner.tryLock(name, options);
  }
  renewLock(...args: Parameters<Store['renewLock']>) {
    return this.inner.renewLock(...args);
  }
  unlock(...args: Parameters<Store['unlock']>) {
    return this.inner.unlock(...args);
  }
  close() {
    return this.inner.close();
  }
  async watch(prefix: string, listener: StoreChangeListener) {
    const entry = { prefix, listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }
  resync() {
    for (const { listener } of this.#listeners) listener({ type: 'resync' });
  }
  #changed(key: string) {
    for (const { prefix, listener } of this.#listeners)
      if (key.startsWith(`${prefix}/`)) listener({ type: 'change', key });
  }
}

interface Backend {
  /** What the replicas use. */
  store: Store;
  /** Writes a value as someone with write access but no encryption key would. */
  plant(key: string, value: string): Promise<void>;
  /** The stored bytes as they are at rest. */
  raw(key: string): Promise<Buffer | null>;
  /** Makes the replicas look at the store again (a file written behind the watcher's back). */
  notify(): void;
}

async function redisBackend(encrypted: boolean): Promise<Backend> {
  const prefix = `certkeeper-test-${randomUUID()}`;
  const open = (keys: boolean) =>
    new RedisStore({
      url: redisUrl!,
      prefix,
      encryption: keys ? { keys: [KEY] } : false,
      logger: quiet,
    });
  const store = open(encrypted);
  const writer = open(false);
  const admin = new Redis(redisUrl!, { lazyConnect: true });
  cleanups.push(async () => {
    await store.close();
    await writer.close();
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });
  return {
    store,
    plant: (key, value) => writer.put(key, value),
    raw: async (key) => {
      const value = await admin.hgetBuffer(`${prefix}:v:${key}`, 'd');
      return value ?? null;
    },
    notify: () => {},
  };
}

function fileBackend(encrypted: boolean): Backend {
  const directory = mkdtempSync(join(tmpdir(), 'certkeeper-alpn-records-'));
  const files = new FileStore({ directory });
  const store = new Notifying(encrypted ? new EncryptedStore(files, { keys: [KEY], logger: quiet }) : files);
  cleanups.push(async () => {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });
  return {
    store,
    plant: async (key, value) => {
      const path = join(directory, ...key.split('/'));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, value);
      store.resync();
    },
    raw: async (key) => {
      try {
        return readFileSync(join(directory, ...key.split('/')));
      } catch {
        return null;
      }
    },
    notify: () => store.resync(),
  };
}

interface Replica {
  alpn: AlpnChallengeRegistry;
  logs: { message: string; fields?: Record<string, unknown> }[];
}

/** Replica `b`: follows the store, answers TLS-ALPN-01 for MANAGED. */
async function replica(store: Store): Promise<Replica> {
  const alpn = new AlpnChallengeRegistry();
  const logs: Replica['logs'] = [];
  const record = (message: string, fields?: Record<string, unknown>) => logs.push({ message, fields });
  const logger: Logger = { debug: record, info: record, warn: record, error: record };
  const sync = new ClusterSync(
    {
      store,
      clock: systemClock,
      logger,
      alpn,
      replicaId: 'b',
      onPointer() {},
      onResync() {},
      answersTlsAlpn: (identifier) => MANAGED.includes(identifier.value),
    },
    { reconcileIntervalMs: 0 },
  );
  await sync.start();
  cleanups.push(() => sync.stop());
  return { alpn, logs };
}

const task = (value: string, token = randomUUID()): ChallengeTask => ({
  type: 'tls-alpn-01',
  identifier: { type: value.includes('.test') ? 'dns' : 'ip', value },
  wildcard: false,
  token,
  keyAuthorization: `${token}.attacker-thumbprint`,
});

/** Waits until replica `b` dealt with the record of `servername` (loaded, acknowledged or logged). */
async function settled(b: Replica, store: Store, servername: string): Promise<void> {
  const done = await eventually(
    async () =>
      b.alpn.get(servername) !== undefined ||
      (await store.get(layout.alpnAck(servername, 'b'))) !== null ||
      b.logs.some((l) => l.fields?.servername === servername),
    10_000,
  );
  expect(done, `replica b never looked at the record for ${servername}`).toBe(true);
}

/** Replica `b` refused the record of `servername`, for `code` (or as a name it does not answer). */
async function refused(b: Replica, store: Store, servername: string, code?: string): Promise<void> {
  await settled(b, store, servername);
  expect(b.alpn.get(servername)).toBeUndefined();
  expect(await store.get(layout.alpnAck(servername, 'b'))).toBeNull();
  const log = b.logs.find((l) => l.fields?.servername === servername);
  if (code) expect(log?.fields?.code).toBe(code);
  else expect(log?.message).toMatch(/does not answer/);
}

/** Certificates a store writer could plant, each wrong in one way. */
const PLANTED: { what: string; record: (name: string) => Promise<unknown> }[] = [
  {
    what: 'a genuine challenge plus a ca field',
    record: async (name) => ({
      ...(await createAlpnCertificate(task(name))),
      ca: (await makeRoot('Planted Root')).certificate.pem,
    }),
  },
  {
    what: 'a genuine challenge plus OpenSSL engine options',
    record: async (name) => ({
      ...(await createAlpnCertificate(task(name))),
      clientCertEngine: '/tmp/planted-engine.so',
      privateKeyEngine: '/tmp/planted-engine.so',
      privateKeyIdentifier: 'planted',
    }),
  },
  {
    what: 'an ordinary self-signed certificate for the name (no acmeIdentifier)',
    record: async (name) => {
      const key = await PrivateKey.generate();
      const now = Date.now();
      const cert = await createCertificate({
        publicKey: key,
        names: [name],
        commonName: name,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
      });
      return { key: key.toPem(), cert: cert.pem };
    },
  },
  {
    what: 'a challenge certificate with a second name',
    record: async (name) => {
      const key = await PrivateKey.generate();
      const now = Date.now();
      const digest = Buffer.concat([Buffer.from([0x04, 0x20]), randomBytes(32)]);
      const cert = await createCertificate({
        publicKey: key,
        names: [name, 'planted.example'],
        commonName: 'ACME TLS-ALPN-01 challenge',
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
        extensions: [new x509.Extension(ID_PE_ACME_IDENTIFIER, true, digest)],
      });
      return { key: key.toPem(), cert: cert.pem };
    },
  },
  {
    what: 'a challenge certificate signed by another CA',
    record: async (name) => {
      const authority = await makeRoot('Planted CA');
      const key = await PrivateKey.generate();
      const now = Date.now();
      const digest = Buffer.concat([Buffer.from([0x04, 0x20]), randomBytes(32)]);
      const cert = await createCertificate({
        publicKey: key,
        issuer: authority,
        names: [name],
        commonName: 'ACME TLS-ALPN-01 challenge',
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
        extensions: [new x509.Extension(ID_PE_ACME_IDENTIFIER, true, digest)],
      });
      return { key: key.toPem(), cert: cert.pem + authority.certificate.pem };
    },
  },
  {
    what: 'a genuine challenge certificate with another key',
    record: async (name) => ({
      ...(await createAlpnCertificate(task(name))),
      key: (await PrivateKey.generate()).toPem(),
    }),
  },
  {
    what: 'the genuine challenge of another managed name',
    record: async (name) => createAlpnCertificate(task(name === 'a.test' ? 'b.test' : 'a.test')),
  },
  { what: 'PEM fields that are not strings', record: async () => ({ key: 1, cert: ['x'] }) },
];

const UNENCRYPTED: [string, () => Promise<Backend> | Backend][] = [
  ['FileStore', () => fileBackend(false)],
  ...(redisUrl
    ? [['RedisStore (encryption: false)', () => redisBackend(false)] as [string, () => Promise<Backend>]]
    : []),
];
const ENCRYPTED: [string, () => Promise<Backend> | Backend][] = [
  ['EncryptedStore over a FileStore', () => fileBackend(true)],
  ...(redisUrl
    ? [['RedisStore with encryption keys', () => redisBackend(true)] as [string, () => Promise<Backend>]]
    : []),
];

for (const [label, open] of UNENCRYPTED) {
  describe(`challenge records planted in a ${label}`, () => {
    for (const { what, record } of PLANTED) {
      it(`refuses ${what}`, async () => {
        const backend = await open();
        const b = await replica(backend.store);
        await backend.plant(alpnRecordKey('a.test'), JSON.stringify(await record('a.test')));
        await refused(b, backend.store, 'a.test', 'CHALLENGE_RECORD_INVALID');
      });
    }

    it('ignores a genuine challenge for a name this replica does not answer for', async () => {
      const backend = await open();
      const b = await replica(backend.store);
      await backend.plant(
        alpnRecordKey('foreign.test'),
        JSON.stringify(await createAlpnCertificate(task('foreign.test'))),
      );
      await refused(b, backend.store, 'foreign.test');
    });

    it('still loads the ordering replica’s challenges, for DNS and IP identifiers', async () => {
      const backend = await open();
      const b = await replica(backend.store);
      for (const value of ['b.test', '192.0.2.7']) {
        const servername = alpnServerName(task(value).identifier);
        await present(backend.store, task(value));
        expect(b.alpn.get(servername)).toBeDefined();
      }
    });
  });
}

/** Replica `a` orders: its solver writes the challenge and waits for `b`'s acknowledgement. */
async function present(store: Store, challenge: ChallengeTask): Promise<void> {
  const solver = new TlsAlpn01Solver();
  solver.ackTimeoutMs = 10_000;
  const warnings: string[] = [];
  const context: ChallengeContext = {
    store,
    clock: systemClock,
    logger: { ...quiet, warn: (message: string) => warnings.push(message) },
    signal: new AbortController().signal,
    tlsAlpn: {
      registry: new AlpnChallengeRegistry(),
      replicas: { self: 'a', live: () => liveMembers(store, Date.now()) },
    },
  };
  await solver.present(challenge, context);
  expect(warnings).toEqual([]);
}

for (const [label, open] of ENCRYPTED) {
  describe(`challenge records in a ${label}`, () => {
    it('are sealed at rest, and loaded by the other replica', async () => {
      const backend = await open();
      const b = await replica(backend.store);
      await present(backend.store, task('a.test'));
      expect(b.alpn.get('a.test')).toBeDefined();
      const raw = await backend.raw(alpnRecordKey('a.test'));
      expect(raw).not.toBeNull();
      expect(raw!.subarray(0, 3).toString('latin1')).toBe('CKE');
      expect(raw!.toString('latin1')).not.toContain('PRIVATE KEY');
    });

    it('refuses a genuine challenge for a managed name written without the encryption key', async () => {
      const backend = await open();
      const b = await replica(backend.store);
      await backend.plant(
        alpnRecordKey('a.test'),
        JSON.stringify(await createAlpnCertificate(task('a.test'))),
      );
      await refused(b, backend.store, 'a.test', 'STORE_CORRUPT');
    });
  });
}
