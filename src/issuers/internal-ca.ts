/**
 * The embedded CA: a root and an intermediate kept in the store (keys at 0600 in a FileStore),
 * issuing short-lived server and client certificates. It is the zero-configuration issuer for
 * development, demos and small fleets; every replica that shares the store shares the CA.
 *
 * The CA is created on first use under a store lock, re-checked after acquiring, so replicas
 * starting together create exactly one. Material is re-read on every issuance (a handful of
 * small reads) so a replica never signs with an intermediate another replica already rotated.
 * A damaged root is never silently replaced: that would invalidate every client's trust.
 */
import type { webcrypto } from 'node:crypto';
import { createCertificate } from '../crypto/certificate-builder.js';
import { inspectCsr } from '../crypto/csr.js';
import { type ParsedCertificate, parseCertificates } from '../crypto/inspect.js';
import { DEFAULT_KEY_TYPE, isKeyType, type KeyType, PrivateKey } from '../crypto/keys.js';
import { toPem } from '../crypto/pem.js';
import { crypto, x509 } from '../crypto/x509.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
  RevocationReason,
} from './issuer.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export interface InternalCAOptions {
  /** Names the CA in the store and in its subject. Default `certkeeper-internal`. */
  name?: string;
  /** Leaf lifetime. Default 24 h; at least 1 s (a minute or more outside tests). */
  lifetimeMs?: number;
  /** Default 10 years. */
  rootLifetimeMs?: number;
  /** Default 1 year; re-issued automatically when less than 10 leaf lifetimes (or 1/3) remain. */
  intermediateLifetimeMs?: number;
  /** Key type of the CA keys. Default ECDSA P-256. */
  keyType?: KeyType;
  /** `purpose` (default): serverAuth for servers, clientAuth for clients. `both`: both EKUs always. */
  extKeyUsage?: 'purpose' | 'both';
  /** Where the CA keeps its material; default: the store of the manager using it. */
  store?: Store;
}

interface Authority {
  key: PrivateKey;
  certificate: ParsedCertificate;
}

/**
 * Roles with a certificate and key in the store. `root-next` and `root-previous` exist only during
 * a root rotation; `retired-<serial>` is a replaced intermediate, kept (to sign CRLs for the
 * leaves it issued) until it expires or its root is retired.
 */
type Role = 'root' | 'intermediate' | 'root-next' | 'root-previous' | `retired-${string}`;
const RETIRED = /^retired-([0-9a-f]+)\.pem$/;
const CRL_NUMBER_OID = '2.5.29.20';

/**
 * Where a root rotation stands (see `beginRootRotation`):
 * `none` one root; `introduced` a next root is published beside the issuing one but signs nothing
 * yet; `activated` the new root issues, the previous one is still published until finished.
 */
export type RootRotationPhase = 'none' | 'introduced' | 'activated';

export interface RootRotationStatus {
  phase: RootRotationPhase;
  /** SHA-256 fingerprints (lowercase hex) of the issuing, next and previous roots. */
  current: string;
  next: string | null;
  previous: string | null;
}

interface RevokedEntry {
  serial: string;
  reason: RevocationReason;
  revokedAt: string;
}

const REASON_CODES: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  caCompromise: x509.X509CrlReason.cACompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

function option(condition: boolean, name: string, bound: string): void {
  if (!condition) throw new CertkeeperError('INVALID_OPTION', `InternalCA option ${name} ${bound}`);
}

export class InternalCA implements Issuer {
  readonly id: string;
  readonly name: string;
  readonly lifetimeMs: number;
  readonly #rootLifetimeMs: number;
  readonly #intermediateLifetimeMs: number;
  readonly #keyType: KeyType;
  readonly #ekuMode: 'purpose' | 'both';
  /**
   * The last authority parsed per role, with the stored bytes it came from. Every issuance reads
   * the store (another replica may have rotated the CA), but parsing a certificate and a key and
   * checking that they match costs ~1 ms: with unchanged bytes the parsed result is reused.
   */
  readonly #parsed = new Map<Role, { cert: Uint8Array; key: Uint8Array; authority: Authority }>();
  /** Told after this process changed the published roots (see `onAnchorsChanged`). */
  readonly #anchorListeners = new Set<() => void>();
  #store: Store | undefined;

  constructor(options: InternalCAOptions = {}) {
    this.name = options.name ?? 'certkeeper-internal';
    option(/^[a-z0-9][a-z0-9._-]{0,63}$/.test(this.name), 'name', 'must be 1-64 of [a-z0-9._-]');
    this.lifetimeMs = options.lifetimeMs ?? DAY;
    option(
      Number.isFinite(this.lifetimeMs) && this.lifetimeMs >= 1000,
      'lifetimeMs',
      'must be at least 1000',
    );
    this.#rootLifetimeMs = options.rootLifetimeMs ?? 3650 * DAY;
    this.#intermediateLifetimeMs = options.intermediateLifetimeMs ?? 365 * DAY;
    option(
      this.#intermediateLifetimeMs > this.lifetimeMs && this.#rootLifetimeMs >= this.#intermediateLifetimeMs,
      'intermediateLifetimeMs',
      'must exceed lifetimeMs and not exceed rootLifetimeMs',
    );
    this.#keyType = options.keyType ?? DEFAULT_KEY_TYPE;
    option(isKeyType(this.#keyType), 'keyType', 'must be a supported key type');
    this.#ekuMode = options.extKeyUsage ?? 'purpose';
    option(['purpose', 'both'].includes(this.#ekuMode), 'extKeyUsage', "must be 'purpose' or 'both'");
    this.#store = options.store;
    this.id = `internal-${this.name}`;
  }

  supportsPurpose(_purpose: CertificatePurpose): boolean {
    return true;
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    const store = this.#useStore(context.store);
    const csr = await inspectCsr(request.csr.der);
    if (!csr.signatureValid)
      throw new CertkeeperError('ISSUER_FAILED', 'internal CA: CSR signature is invalid');
    const now = context.clock.now();
    const intermediate = await this.#ensureIntermediate(store, now);
    const backdate = Math.min(MINUTE, this.lifetimeMs / 10);
    const notBefore = new Date(now - backdate);
    const notAfter = new Date(
      Math.min(notBefore.getTime() + this.lifetimeMs, intermediate.certificate.info.notAfter.getTime()),
    );
    const leaf = await createCertificate({
      publicKey: csr.publicKey,
      issuer: intermediate,
      commonName: request.names.find((n) => !n.includes(':') && n.length <= 64 && !/^[\d.]+$/.test(n)),
      names: request.names,
      notBefore,
      notAfter,
      extKeyUsage:
        this.#ekuMode === 'both'
          ? ['serverAuth', 'clientAuth']
          : [request.purpose === 'client' ? 'clientAuth' : 'serverAuth'],
    });
    return { chainPem: leaf.pem + intermediate.certificate.pem };
  }

  /**
   * The roots to trust: the issuing root, plus during a rotation the next root (published before
   * it signs anything) or the previous one (published until every certificate it covers is gone).
   */
  async trustAnchors(context: IssuerContext): Promise<string[]> {
    return this.publishedRoots(context.store);
  }

  /** `trustAnchors` without an issuer context. Creates the CA on first call. */
  async publishedRoots(store?: Store): Promise<string[]> {
    const s = this.#useStore(store);
    const root = await this.#ensureRoot(s);
    const [next, previous] = await Promise.all([
      this.#readUnlocked(s, 'root-next'),
      s.get(layout.ca(this.name, 'root-previous.pem')),
    ]);
    const pems = [root.certificate.pem];
    if (next) pems.push(next.certificate.pem);
    if (previous) pems.push(Buffer.from(previous).toString('utf8'));
    return [...new Set(pems)];
  }

  /** Registers `listener` for changes to `publishedRoots` made through this object. */
  onAnchorsChanged(listener: () => void): () => void {
    this.#anchorListeners.add(listener);
    return () => this.#anchorListeners.delete(listener);
  }

  async rootRotation(store?: Store): Promise<RootRotationStatus> {
    const s = this.#useStore(store);
    const root = await this.#ensureRoot(s);
    const [next, previous] = await Promise.all([
      this.#readUnlocked(s, 'root-next'),
      s.get(layout.ca(this.name, 'root-previous.pem')),
    ]);
    const current = root.certificate.info.fingerprint256;
    const nextFp = next ? next.certificate.info.fingerprint256 : null;
    const previousFp = previous ? parseCertificates(previous)[0]!.info.fingerprint256 : null;
    return {
      phase: previousFp ? 'activated' : nextFp && nextFp !== current ? 'introduced' : 'none',
      current,
      next: nextFp === current ? null : nextFp,
      previous: previousFp,
    };
  }

  /**
   * Root rotation, step 1 of 3: creates the next root and publishes it beside the issuing one.
   * Nothing is signed by it yet, so every peer can learn to trust it (refresh the trust stores)
   * before any certificate depends on it. Idempotent while `introduced`.
   */
  async beginRootRotation(store?: Store, now = Date.now()): Promise<RootRotationStatus> {
    const s = this.#useStore(store);
    await this.#underLock(s, async () => {
      await this.#rootLocked(s);
      if (await s.get(layout.ca(this.name, 'root-previous.pem'))) {
        throw this.#rotationState('beginRootRotation', 'a previous rotation is not finished');
      }
      if (await this.#readAuthority(s, 'root-next')) return;
      await this.#writeAuthority(s, 'root-next', await this.#makeRoot(now, true));
    });
    this.#anchorsChanged();
    return this.rootRotation(s);
  }

  /**
   * Step 2 of 3: the next root becomes the issuing root, with a fresh intermediate under it; the
   * old root stays published as `previous`. Follow with `manager.renewAll()` so every
   * certificate is re-issued under the new root.
   */
  async activateNextRoot(store?: Store, now = Date.now()): Promise<RootRotationStatus> {
    const s = this.#useStore(store);
    await this.#underLock(s, async () => {
      const next = await this.#readAuthority(s, 'root-next');
      if (!next) throw this.#rotationState('activateNextRoot', 'no next root (call beginRootRotation)');
      const root = await this.#rootLocked(s);
      // Order matters for a crash half-way: the old root is kept as `previous` before it stops
      // being `root`, and `root-next` is removed only once it is `root` (rootRotation() reads a
      // next root equal to the root as "activated").
      await this.#writeAuthority(s, 'root-previous', root);
      await this.#retire(s, now);
      await this.#writeAuthority(s, 'root', next);
      await this.#writeAuthority(s, 'intermediate', await this.#makeIntermediate(next, now));
      await s.delete(layout.ca(this.name, 'root-next.pem'));
      await s.delete(layout.ca(this.name, 'root-next-key.pem'));
    });
    this.#anchorsChanged();
    return this.rootRotation(s);
  }

  /**
   * Step 3 of 3: stops publishing the previous root. `guard` receives the roots that will remain
   * and may throw to refuse (a TrustStore's `assertUpdate` refuses while a served certificate
   * still chains only to the old root); nothing changes then.
   */
  async finishRootRotation(
    options: { store?: Store; guard?: (remaining: string[]) => void | Promise<void> } = {},
  ): Promise<RootRotationStatus> {
    const s = this.#useStore(options.store);
    await this.#underLock(s, async () => {
      const previousKey = layout.ca(this.name, 'root-previous.pem');
      if (!(await s.get(previousKey))) {
        throw this.#rotationState('finishRootRotation', 'no previous root (call activateNextRoot)');
      }
      const root = await this.#rootLocked(s);
      const next = await this.#readAuthority(s, 'root-next');
      const remaining = [root.certificate.pem, ...(next ? [next.certificate.pem] : [])];
      await options.guard?.(remaining);
      // Its leaves no longer verify anywhere: nothing needs CRLs from it or its intermediates.
      for (const { role, authority } of await this.#retiredAuthorities(s)) {
        if (authority.certificate.info.authorityKeyId !== root.certificate.info.subjectKeyId)
          await this.#deleteAuthority(s, role);
      }
      await s.delete(layout.ca(this.name, 'root-previous-key.pem'));
      await s.delete(previousKey);
    });
    this.#anchorsChanged();
    return this.rootRotation(s);
  }

  #rotationState(step: string, why: string): CertkeeperError {
    return new CertkeeperError('CA_ROTATION_STATE', `internal CA ${this.name}: ${step}: ${why}`, {
      details: { step },
    });
  }

  #anchorsChanged(): void {
    for (const listener of this.#anchorListeners) listener();
  }

  /** The root certificate (PEM) that clients must trust. Creates the CA on first call. */
  async rootCertificate(store?: Store): Promise<string> {
    return (await this.#ensureRoot(this.#useStore(store))).certificate.pem;
  }

  /**
   * Replaces the intermediate with a fresh one from the root: the "intermediate compromised"
   * drill. Follow with `manager.renewAll()` so every leaf is re-issued under it.
   */
  async rotateIntermediate(store?: Store, now = Date.now()): Promise<void> {
    const s = this.#useStore(store);
    await this.#underLock(s, async () => {
      const root = await this.#rootLocked(s);
      await this.#retire(s, now);
      await this.#writeAuthority(s, 'intermediate', await this.#makeIntermediate(root, now));
    });
  }

  async revoke(
    certificate: { chainPem: string },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void> {
    const store = this.#useStore(context.store);
    const [leaf] = parseCertificates(certificate.chainPem);
    await this.#underLock(store, async () => {
      const list = await this.#revoked(store);
      if (!list.some((e) => e.serial === leaf!.info.serialNumber)) {
        list.push({
          serial: leaf!.info.serialNumber,
          reason,
          revokedAt: new Date(context.clock.now()).toISOString(),
        });
        await store.put(layout.ca(this.name, 'revoked.json'), JSON.stringify(list, null, 2));
      }
    });
  }

  /** Serials revoked so far (lowercase hex). */
  async revokedSerials(store?: Store): Promise<string[]> {
    return (await this.#revoked(this.#useStore(store))).map((e) => e.serial);
  }

  /**
   * A CRL (PEM) signed by the current intermediate, listing the revoked leaves. Node's `tls`
   * checks the whole client chain once a CRL is set (CRL_CHECK_ALL), so a Node server needs
   * `crls()`, which adds the root's CRL for the intermediate.
   */
  async crl(store?: Store, now = Date.now()): Promise<string> {
    const s = this.#useStore(store);
    const intermediate = await this.#ensureIntermediate(s, now);
    return this.#signCrl(intermediate, await this.#crlEntries(s), now);
  }

  /**
   * Every CRL a verifier that checks the whole chain needs: the intermediate's (revoked leaves,
   * as `crl()`) and the root's (no revoked intermediates) first; then the same for every replaced
   * intermediate whose leaves may still be in service (an automatic renewal, `rotateIntermediate`,
   * a root rotation) and, during a root rotation, the previous root's. Without them a verifier
   * that checks CRLs refuses those leaves (no CRL for their issuer) until they are re-issued.
   * Pass the list as the `crl` option of a Node `tls` / `https` server that requests client
   * certificates, and refresh it on a schedule (`nextUpdate` is at most a day away).
   */
  async crls(store?: Store, now = Date.now()): Promise<string[]> {
    const s = this.#useStore(store);
    const entries = await this.#crlEntries(s);
    const out = [
      await this.#signCrl(await this.#ensureIntermediate(s, now), entries, now),
      await this.#signCrl(await this.#ensureRoot(s), [], now),
    ];
    for (const { authority } of await this.#retiredAuthorities(s)) {
      if (authority.certificate.info.notAfter.getTime() > now)
        out.push(await this.#signCrl(authority, entries, now));
    }
    // Written by this version at activation; a rotation begun by an older one has no key to sign with.
    const previous = await this.#readUnlocked(s, 'root-previous');
    if (previous) out.push(await this.#signCrl(previous, [], now));
    return out;
  }

  async #crlEntries(store: Store): Promise<x509.X509CrlEntryParams[]> {
    return (await this.#revoked(store)).map((e) => ({
      serialNumber: e.serial,
      revocationDate: new Date(e.revokedAt),
      reason: REASON_CODES[e.reason],
    }));
  }

  /**
   * Keeps the current intermediate as retired before it is replaced, and drops retired ones that
   * have expired (no leaf outlives its intermediate). The caller holds the CA lock.
   */
  async #retire(store: Store, now: number): Promise<void> {
    const current = await this.#readAuthority(store, 'intermediate');
    if (current)
      await this.#writeAuthority(store, `retired-${current.certificate.info.serialNumber}`, current);
    for (const { role, authority } of await this.#retiredAuthorities(store)) {
      if (authority.certificate.info.notAfter.getTime() <= now) await this.#deleteAuthority(store, role);
    }
  }

  /** Retired intermediates; one that cannot be read is skipped (it only costs its CRL). */
  async #retiredAuthorities(store: Store): Promise<{ role: Role; authority: Authority }[]> {
    const found: { role: Role; authority: Authority }[] = [];
    for (const key of await store.list(layout.caDir(this.name))) {
      const serial = RETIRED.exec(key.slice(key.lastIndexOf('/') + 1))?.[1];
      if (!serial) continue;
      const role: Role = `retired-${serial}`;
      const authority = await this.#readUnlocked(store, role);
      if (authority) found.push({ role, authority });
    }
    return found;
  }

  async #deleteAuthority(store: Store, which: Role): Promise<void> {
    // Certificate first: a key without its certificate is never mistaken for a working CA.
    await store.delete(layout.ca(this.name, `${which}.pem`));
    await store.delete(layout.ca(this.name, `${which}-key.pem`));
    this.#parsed.delete(which);
  }

  async #signCrl(authority: Authority, entries: x509.X509CrlEntryParams[], now: number): Promise<string> {
    const crl = await x509.X509CrlGenerator.create(
      {
        issuer: new x509.X509Certificate(authority.certificate.der).subjectName,
        thisUpdate: new Date(now - MINUTE),
        nextUpdate: new Date(now + Math.min(this.lifetimeMs, DAY)),
        entries,
        // RFC 5280 §5.2: both MUST be present. The AKI is also how OpenSSL picks the right CRL
        // among issuers of the same name (intermediates of one CA, before and after a renewal).
        extensions: [
          new x509.AuthorityKeyIdentifierExtension(authority.certificate.info.subjectKeyId!, false),
          new x509.Extension(CRL_NUMBER_OID, false, derInteger(Math.floor(now / 1000))),
        ],
        signingKey: (await authority.key.cryptoKeyPair()).privateKey,
        signingAlgorithm: authority.key.signingAlgorithm as webcrypto.Algorithm,
      },
      crypto,
    );
    // RFC 7468 label: OpenSSL and Node's `tls` refuse @peculiar/x509's `-----BEGIN CRL-----`.
    return toPem('X509 CRL', new Uint8Array(crl.rawData));
  }

  #useStore(store: Store | undefined): Store {
    const chosen = this.#store ?? store;
    if (!chosen) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        'InternalCA has no store yet: pass options.store or use it through a manager',
      );
    }
    this.#store ??= chosen;
    return chosen;
  }

  async #revoked(store: Store): Promise<RevokedEntry[]> {
    const raw = await store.get(layout.ca(this.name, 'revoked.json'));
    if (!raw) return [];
    try {
      return JSON.parse(Buffer.from(raw).toString('utf8')) as RevokedEntry[];
    } catch {
      throw new CertkeeperError('CA_CORRUPT', `internal CA ${this.name}: revoked.json is not valid JSON`);
    }
  }

  async #underLock<T>(store: Store, fn: () => Promise<T>): Promise<T> {
    const lease = await store.lock(`ca/${this.name}`, { ttlMs: 60_000 });
    try {
      return await fn();
    } finally {
      await store.unlock(lease);
    }
  }

  async #readAuthority(store: Store, which: Role): Promise<Authority | null> {
    const [certRaw, keyRaw] = await Promise.all([
      store.get(layout.ca(this.name, `${which}.pem`)),
      store.get(layout.ca(this.name, `${which}-key.pem`)),
    ]);
    if (!certRaw) return null;
    const cached = this.#parsed.get(which);
    if (cached && keyRaw && sameBytes(cached.cert, certRaw) && sameBytes(cached.key, keyRaw)) {
      return cached.authority;
    }
    try {
      if (!keyRaw) throw new CertkeeperError('CA_CORRUPT', `${which} key is missing`);
      const [certificate] = parseCertificates(certRaw, `internal CA ${which}`);
      const key = PrivateKey.fromPem(keyRaw);
      if (!certificate!.node.checkPrivateKey(key.keyObject)) {
        throw new CertkeeperError('CA_CORRUPT', `${which} key does not match its certificate`);
      }
      const authority = { key, certificate: certificate! };
      this.#parsed.set(which, { cert: certRaw, key: keyRaw, authority });
      return authority;
    } catch (error) {
      const reason = isCertkeeperError(error) ? error.message : 'unreadable';
      throw new CertkeeperError(
        'CA_CORRUPT',
        `internal CA ${this.name}: ${which} in the store is damaged (${reason})`,
        {
          cause: error,
          details: { which },
        },
      );
    }
  }

  async #writeAuthority(store: Store, which: Role, authority: Authority): Promise<void> {
    // Key first: a certificate without its key would look like a working CA.
    await store.put(layout.ca(this.name, `${which}-key.pem`), authority.key.toPem());
    await store.put(layout.ca(this.name, `${which}.pem`), authority.certificate.pem);
  }

  /**
   * A read without the lock, for the fast path. Writers hold the lock and write the key before the
   * certificate, so such a read can catch a rotation half-way (new key, old certificate): what
   * looks damaged here reads as null, and is only believed damaged when re-read under the lock.
   */
  async #readUnlocked(store: Store, which: Role): Promise<Authority | null> {
    try {
      return await this.#readAuthority(store, which);
    } catch (error) {
      if (isCertkeeperError(error) && error.code === 'CA_CORRUPT') return null;
      throw error;
    }
  }

  async #ensureRoot(store: Store): Promise<Authority> {
    const existing = await this.#readUnlocked(store, 'root');
    if (existing) return existing;
    // Another replica may create it while we wait for the lock: #rootLocked re-reads first.
    return this.#underLock(store, () => this.#rootLocked(store));
  }

  /** Reads or creates the root; the caller holds the CA lock (locks are not re-entrant). */
  async #rootLocked(store: Store): Promise<Authority> {
    const existing = await this.#readAuthority(store, 'root');
    if (existing) return existing;
    const root = await this.#makeRoot(Date.now(), false);
    await this.#writeAuthority(store, 'root', root);
    return root;
  }

  async #makeRoot(now: number, rotated: boolean): Promise<Authority> {
    const key = await PrivateKey.generate(this.#keyType);
    // A rotated root gets its own subject (dated): peers, logs and OpenSSL's lookup by subject
    // tell the two roots apart while both are trusted.
    const stamp = rotated ? ` ${new Date(now).toISOString().replace(/[-:]|\.\d+/g, '')}` : '';
    const certificate = await createCertificate({
      publicKey: key,
      subject: `CN=${this.name} Root CA${stamp},O=certkeeper`,
      notBefore: new Date(now - MINUTE),
      notAfter: new Date(now + this.#rootLifetimeMs),
      isCA: true,
      pathLength: 1,
    });
    return { key, certificate };
  }

  async #makeIntermediate(root: Authority, now: number): Promise<Authority> {
    const key = await PrivateKey.generate(this.#keyType);
    const certificate = await createCertificate({
      publicKey: key,
      issuer: root,
      subject: `CN=${this.name} Intermediate CA,O=certkeeper`,
      notBefore: new Date(now - MINUTE),
      notAfter: new Date(
        Math.min(now + this.#intermediateLifetimeMs, root.certificate.info.notAfter.getTime()),
      ),
      isCA: true,
      pathLength: 0,
    });
    return { key, certificate };
  }

  #intermediateFresh(intermediate: Authority, now: number): boolean {
    const { notAfter, lifetimeMs } = intermediate.certificate.info;
    const margin = Math.max(10 * this.lifetimeMs, lifetimeMs / 3);
    return notAfter.getTime() - now > Math.min(margin, lifetimeMs / 2);
  }

  async #ensureIntermediate(store: Store, now: number): Promise<Authority> {
    const existing = await this.#readUnlocked(store, 'intermediate');
    if (existing && this.#intermediateFresh(existing, now)) return existing;
    return this.#underLock(store, async () => {
      const again = await this.#readAuthority(store, 'intermediate');
      if (again && this.#intermediateFresh(again, now)) return again;
      const root = await this.#rootLocked(store);
      const intermediate = await this.#makeIntermediate(root, now);
      if (again) await this.#retire(store, now);
      await this.#writeAuthority(store, 'intermediate', intermediate);
      return intermediate;
    });
  }
}

/** DER of a non-negative INTEGER (the CRL number: seconds, increasing from one CRL to the next). */
function derInteger(value: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  if (bytes.length === 0 || bytes[0]! >= 0x80) bytes.unshift(0);
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
