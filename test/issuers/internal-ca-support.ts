// What the InternalCA tests share: temp dirs and TLS servers cleaned up after each test, an
// issuer context, issuance of a parsed chain, and the openssl CLI as an independent verifier.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach } from 'vitest';
import { type Clock, systemClock } from '../../src/clock.js';
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { createCsr } from '../../src/crypto/csr.js';
import { type ParsedCertificate, parseCertificates } from '../../src/crypto/inspect.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import type { InternalCA } from '../../src/issuers/internal-ca.js';
import type { CertificatePurpose, CertificateRequest, IssuerContext } from '../../src/issuers/issuer.js';
import { silentLogger } from '../../src/logger.js';
import { layout } from '../../src/store/layout.js';
import type { LockLease, LockOptions, Store, StoreStat, WriteOptions } from '../../src/store/store.js';
import { close } from '../support/tls.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

const temps: string[] = [];
/** TLS servers a test started; closed after it. */
export const servers: tls.Server[] = [];
/** Call at the top of a test file: closes `servers` and removes `tempDir`s after each test. */
export function cleanupAfterEach(): void {
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => close(s)));
    for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

export function tempDir(prefix = 'certkeeper-ca-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export function context(store: Store, clock: Clock = systemClock): IssuerContext {
  return { store, clock, logger: silentLogger, signal: new AbortController().signal };
}

/** A clock stopped `offsetMs` ahead of real time (timers are the system's). */
export function clockAhead(offsetMs: number): Clock {
  const at = Date.now() + offsetMs;
  return { ...systemClock, now: () => at };
}

export async function request(
  names: string[],
  purpose: CertificatePurpose = 'server',
): Promise<CertificateRequest> {
  const key = await PrivateKey.generate();
  return { id: names[0]!, names, purpose, keyType: key.type, key, csr: await createCsr({ key, names }) };
}

/** Issues for `names` and returns the parsed chain next to the key. */
export async function issue(
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

export const text = (bytes: Uint8Array | null) =>
  bytes === null ? null : Buffer.from(bytes).toString('utf8');
export const caFile = (ca: InternalCA, file: string) => layout.ca(ca.name, file);

export function openssl(args: string[], input?: string): { ok: boolean; output: string } {
  const result = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 10_000 });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** `openssl verify -CAfile root -untrusted intermediate -purpose <purpose> leaf` (plus extra flags). */
export function opensslVerify(
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

/** A TLS client; resolves with what the server sent, or the error that ended the connection. */
export function connect(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ data?: string; error?: string }> {
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

/** The CA's state record as a MemoryStore (no encryption) holds it: its one commit point. */
export async function caState(store: Store, ca: InternalCA) {
  const raw = await store.get(caFile(ca, 'state.key'));
  if (!raw) throw new Error('no CA state in the store');
  return JSON.parse(Buffer.from(raw).toString('utf8')) as {
    version: number;
    root: { cert: string; key: string };
    intermediate: { cert: string; key: string };
    previous: { cert: string; key: string } | null;
    retired: { cert: string; key: string }[];
  };
}

/** What a thief of the current intermediate's key holds: that key and its certificate. */
export async function stealIntermediate(store: Store, ca: InternalCA) {
  const { intermediate } = await caState(store, ca);
  return { key: PrivateKey.fromPem(intermediate.key), certificate: parseCertificates(intermediate.cert)[0]! };
}

/** A store that records every put and can hold a put at a gate: to count creations and open race windows. */
export class ObservedStore implements Store {
  readonly puts: string[] = [];
  readonly locks: { name: string; ttlMs: number | undefined }[] = [];
  gate: ((key: string) => Promise<void>) | undefined;
  constructor(readonly inner: Store) {}
  get(key: string): Promise<Uint8Array | null> {
    return this.inner.get(key);
  }
  async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    this.puts.push(key);
    await this.gate?.(key);
    return this.inner.put(key, value, options);
  }
  delete(key: string, options?: WriteOptions): Promise<boolean> {
    return this.inner.delete(key, options);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  stat(key: string): Promise<StoreStat | null> {
    return this.inner.stat(key);
  }
  lock(name: string, options?: LockOptions): Promise<LockLease> {
    this.locks.push({ name, ttlMs: options?.ttlMs });
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

/**
 * Writes a CA the way certkeeper wrote one before its state became one record: a certificate and
 * a key per role (`root.pem`, `root-key.pem`, `intermediate.pem`, `intermediate-key.pem`).
 */
export async function plantLegacyCa(store: Store, name = 'certkeeper-internal') {
  const now = Date.now();
  const make = async (
    issuer: { key: PrivateKey; certificate: ParsedCertificate } | undefined,
    role: string,
  ) => {
    const key = await PrivateKey.generate();
    const certificate = await createCertificate({
      publicKey: key,
      ...(issuer ? { issuer } : {}),
      subject: `CN=${name} ${role} CA,O=certkeeper`,
      notBefore: new Date(now - MINUTE),
      notAfter: new Date(now + (issuer ? 365 : 3650) * 24 * HOUR),
      isCA: true,
      pathLength: issuer ? 0 : 1,
    });
    return { key, certificate };
  };
  const root = await make(undefined, 'Root');
  const intermediate = await make(root, 'Intermediate');
  for (const [role, authority] of [
    ['root', root],
    ['intermediate', intermediate],
  ] as const) {
    await store.put(layout.ca(name, `${role}-key.pem`), authority.key.toPem());
    await store.put(layout.ca(name, `${role}.pem`), authority.certificate.pem);
  }
  return { root, intermediate };
}
