/**
 * The certificate manager: a facade over the managed certificates (one `ManagedCertificate`
 * each, managed-certificate.ts), a set that grows and shrinks while running (`manage`,
 * `unmanage`). It starts and stops them, attaches servers and adds deploy targets, and answers
 * for them (status, health, ready). Where things happen:
 *   loading and serving            managed-certificate.ts (load, materialize, install)
 *   one renewal                    renewal.ts: lock → re-check → key/CSR → issuer → validate →
 *                                  commit → deploy → verify → emit | roll back → record failure
 *   replicas                       adoption.ts (another replica's newer certificate, cluster/sync.ts)
 *   waiting                        ready.ts: served and verified, or NOT_READY with the errors
 *   what the certificates share    runtime.ts (options, cache, targets, scheduler, stop signal)
 *   shutting down (`stop`)         attempts ended and cleaned up (bounded), then what it created closed
 */
import type tls from 'node:tls';
import { EventEmitter } from 'eventemitter3';
import { ClusterSync } from '../cluster/sync.js';
import type { PrivateKey } from '../crypto/keys.js';
import type { DeployTarget } from '../deploy/target.js';
import { CertkeeperError } from '../errors.js';
import type { RevocationReason } from '../issuers/issuer.js';
import { type AttachmentHost, type AttachOptions, ServerAttachment } from '../server/attachment.js';
import { certificateName, issuerKey, layout } from '../store/layout.js';
import { reconcile } from './adoption.js';
import type { ManagerEvents } from './events.js';
import { type HealthReport, type ManagerHealthOptions, managerHealth } from './health.js';
import { foreground, ProcessHold, settledWithin } from './keep-alive.js';
import { ManagedCertificate } from './managed-certificate.js';
import {
  type CertificateConfig,
  checkTarget,
  type ManagedCertificateOptions,
  type ManagerOptions,
  optionError,
  type ResolvedOptions,
  resolveCertificate,
  resolveOptions,
} from './options.js';
import { type ReadyOptions, readyOptions, waitReady } from './ready.js';
import { revocationWatch, revokeCertificate } from './revoke.js';
import { Runtime } from './runtime.js';
import { type CertificateStatus, renewAllFailure } from './status.js';

export type { ReadyOptions } from './ready.js';
export type { CertificateStatus } from './status.js';

export class CertificateManager extends EventEmitter<ManagerEvents> {
  readonly #o: ResolvedOptions;
  readonly #rt: Runtime;
  /** The managed certificates by id: grows and shrinks while running (`manage`, `unmanage`). */
  readonly #certs = new Map<string, ManagedCertificate>();
  readonly #cluster: ClusterSync;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Holds the process while running, per the `keepAlive` option. */
  readonly #hold = new ProcessHold();
  /** What attached servers read (runtime.ts). */
  readonly #source: AttachmentHost;

  constructor(options: ManagerOptions) {
    super();
    this.#o = resolveOptions(options);
    this.#rt = new Runtime(this.#o, this, async (id) => this.#certs.get(id)?.tick());
    const rt = this.#rt;
    this.#source = rt.attachmentHost();
    this.#cluster = new ClusterSync(
      {
        store: this.#o.store,
        clock: this.#o.clock,
        logger: this.#o.logger,
        alpn: rt.alpn,
        replicaId: this.#o.replicaId,
        onPointer: (key) => this.#onPointer(key),
        onResync: () => {
          for (const cert of this.#certs.values()) rt.track(reconcile(rt, cert));
        },
        // TLS-ALPN-01 validates exact names: a wildcard's base name only when it is listed too.
        answersTlsAlpn: ({ value }) => {
          const id = this.#source.usesTlsAlpn() ? rt.cache.lookup(value) : undefined;
          return id !== undefined && this.#certs.get(id)?.config.names.includes(value) === true;
        },
      },
      { reconcileIntervalMs: this.#o.reconcileIntervalMs },
    );
    for (const cert of this.#o.certificates) this.#add(cert);
    // A handshake's miss: a job loading the certificate outside the handshake.
    rt.cache.setLoader((id) => this.#certs.get(id)?.materialize('lazy') ?? Promise.resolve(undefined));
    for (const target of this.#o.targets) rt.targets.add(target);
    rt.revocations = revocationWatch(rt, () => this.#certs.values());
    // An attempt that found no server listening to answer TLS-ALPN-01 goes again once one listens.
    rt.alpn.onListening(() => {
      for (const cert of this.#certs.values()) cert.retryWhenAnswerable();
    });
  }

  /** Loads stored certificates (served at once), then keeps them renewed. Resolves after loading. */
  start(): Promise<void> {
    try {
      this.#assertNotStopped();
    } catch (error) {
      return Promise.reject(error);
    }
    // Every caller waits for the one start-up.
    this.#starting ??= (async () => {
      this.#rt.begin();
      this.#updateHold();
      for (const issuer of this.#o.issuers)
        issuer.bind?.({ store: this.#o.store, lockTtlMs: this.#o.lockTtlMs });
      await Promise.all([...this.#certs.values()].map((cert) => cert.load(this.#eager())));
      await this.#cluster.start();
      // stop() may have come while loading: the loop must not start after it.
      if (this.#rt.running()) this.#rt.scheduler.start();
    })();
    return this.#starting;
  }

  /**
   * Resolves once every (or each given) certificate is served: loaded from the store, adopted,
   * or obtained with its swap live-verified and its events emitted. Rejects with NOT_READY,
   * naming each certificate not ready with its typed error, at `timeoutMs` (default twice
   * `issueTimeoutMs`), when `signal` aborts, or as soon as a certificate not ready failed with an
   * error retrying cannot fix; with MANAGER_STOPPED when the manager stops. The manager keeps
   * trying either way. `ready(['id'])` is `ready({ ids: ['id'] })`.
   */
  async ready(options?: string[] | ReadyOptions): Promise<void> {
    const o = readyOptions(options, 2 * this.#o.issueTimeoutMs);
    const certs = (o.ids ?? [...this.#certs.keys()]).map((id) => this.#cert(id));
    // Renewal timers are unref'd (background work must not keep a process alive), so a bare
    // `await manager.ready()` in a script could see the event loop run empty before the first
    // certificate is obtained, and Node exit with code 13. Waiting is foreground work.
    await foreground(waitReady(certs, this, this.#rt.signal, o));
  }

  /**
   * Stops the loop and every attempt under way, and resolves once they have ended and cleaned
   * up after themselves (challenge records, authorizations: through the store), within
   * `stopTimeoutMs`. Servers keep serving what they have. Closes what the manager created (its
   * default FileStore and InternalCA), never a store or issuer passed in: whoever creates an
   * object closes it, after `stop()` has resolved. Idempotent: every call resolves when the
   * first one is done.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    this.#rt.end();
    this.#updateHold();
    await this.#cluster.stop();
    // Attempts end at once (their signal fired); what they started at their issuers may still
    // be cleaning up through the store, which the caller closes next.
    const certs = [...this.#certs.values()];
    for (const cert of certs) cert.stop();
    const work = [...certs.flatMap((c) => c.pendingWork()), ...this.#rt.background];
    if (!(await foreground(settledWithin(Promise.allSettled(work), this.#o.stopTimeoutMs)))) {
      this.#o.logger.warn('stop: work still under way after stopTimeoutMs; stopping anyway', {
        stopTimeoutMs: this.#o.stopTimeoutMs,
        ids: certs.filter((c) => c.renewing).map((c) => c.id),
      });
    }
    if (this.#o.ownsIssuers) {
      await Promise.allSettled([...this.#o.capabilities.values()].map(({ closable }) => closable?.close()));
    }
    if (this.#o.ownsStore) await this.#o.store.close();
  }

  /** Adds a certificate to manage (at any time); a running manager loads it at once. */
  manage(options: ManagedCertificateOptions): void {
    this.#assertNotStopped();
    const config = resolveCertificate(options, 'manage(certificate)', this.#o.issuers);
    if (this.#certs.has(config.id))
      throw optionError('manage(certificate).id', `duplicates id "${config.id}"`);
    const cert = this.#add(config);
    if (this.#rt.running()) void cert.load(this.#eager());
  }

  /** Stops managing `id`: no handshake gets it, nothing renews it; what is stored stays. */
  unmanage(id: string): void {
    const cert = this.#cert(id);
    cert.remove();
    this.#certs.delete(id);
    this.#rt.cache.remove(id);
    this.#rt.scheduler.delete(id);
  }

  /** Adds one certificate to the set; handshakes get it once it is loaded or obtained. */
  #add(config: CertificateConfig): ManagedCertificate {
    const cert = new ManagedCertificate(config, this.#rt);
    this.#certs.set(config.id, cert);
    this.#rt.cache.add(config.id, config.names, config.purpose === 'server');
    return cert;
  }

  /** Serves managed certificates on an existing server; see `AttachOptions`. */
  attach(server: tls.Server, options: AttachOptions = {}): ServerAttachment {
    this.#assertNotStopped();
    for (const id of [
      ...(options.certificates ?? []),
      ...(options.defaultCertificate ? [options.defaultCertificate] : []),
    ]) {
      if (this.#cert(id).config.purpose !== 'server')
        throw optionError('attach.certificates', `"${id}" is not a server certificate`);
    }
    const attachment = new ServerAttachment(server, this.#source, options);
    this.#rt.attachments.add(attachment);
    this.#updateHold();
    for (const cert of this.#certs.values()) {
      if (cert.config.purpose !== 'server') continue;
      if (cert.current) this.#rt.applyInBackground(attachment, cert.id, cert.current);
      // The default certificate is the server's own context: it must be in memory.
      else if (cert.stored && attachment.defaultId === cert.id) void cert.materialize();
    }
    return attachment;
  }

  detach(target: tls.Server | ServerAttachment): void {
    for (const attachment of this.#rt.attachments) {
      if (attachment === target || attachment.server === target) {
        attachment.detach();
        this.#rt.attachments.delete(attachment);
      }
    }
    this.#updateHold();
  }

  /**
   * Adds a deploy target (see `ManagerOptions.targets`): what is served now is applied to it at
   * once, and every later certificate it serves goes through it. Returns the function that
   * removes it again (it is not closed: whoever creates a target closes it).
   */
  addTarget(target: DeployTarget): () => void {
    this.#assertNotStopped();
    checkTarget(target, 'addTarget(target)');
    for (const other of this.#rt.allTargets()) {
      if (other.name === target.name)
        throw optionError('addTarget(target).name', `duplicates the target name "${target.name}"`);
    }
    this.#rt.targets.add(target);
    for (const cert of this.#certs.values()) {
      if (cert.current && target.serves(cert.id)) this.#rt.applyInBackground(target, cert.id, cert.current);
    }
    return () => {
      this.#rt.targets.delete(target);
    };
  }

  /**
   * Renews one certificate now, whatever its schedule. Resolves once the new certificate is
   * served; rejects with the attempt's typed error otherwise (the previous certificate is still
   * served and the retry is scheduled as after any failure).
   */
  async renewNow(id: string): Promise<void> {
    this.#assertNotStopped();
    const failure = await foreground(this.#cert(id).obtain('forced'));
    if (failure) throw failure;
  }

  /**
   * Renews every certificate now: the "intermediate compromised, rotate everything" drill. Every
   * certificate is attempted; if any failed, rejects with RENEWAL_FAILED naming them (the first
   * failure as `cause`, every id's code in `details.failed`).
   */
  async renewAll(): Promise<void> {
    this.#assertNotStopped();
    const queue = [...this.#certs.values()];
    const failed = new Map<string, CertkeeperError>();
    const worker = async () => {
      for (let cert = queue.shift(); cert; cert = queue.shift()) {
        const failure = await cert.obtain('forced');
        if (failure) failed.set(cert.id, failure);
      }
    };
    const total = queue.length;
    await foreground(Promise.all(Array.from({ length: Math.min(this.#o.concurrency, total) }, worker)));
    if (failed.size > 0) throw renewAllFailure(failed, total);
  }

  /**
   * Revokes the served certificate of `id` (where the issuer supports it) and replaces it. The
   * revoked generation is deleted from the store at once and is never served again after the
   * replacement, nor fallen back to (rollback, restart, damaged newer generation).
   */
  async revoke(id: string, reason: RevocationReason = 'unspecified'): Promise<void> {
    await revokeCertificate(this.#rt, this.#cert(id), reason);
  }

  /** The union of the issuers' trust anchors (PEM), for clients of the managed servers. */
  async trustAnchors(): Promise<string[]> {
    const lists = await Promise.all(
      [...this.#o.capabilities.values()].map(
        ({ anchors }) => anchors?.trustAnchors(this.#rt.context(this.#rt.signal)) ?? [],
      ),
    );
    return [...new Set(lists.flat())];
  }

  /** The certificate served for `id` (no key), or null (also while not yet loaded: see `load`). */
  certificate(
    id: string,
  ): { chainPem: string; serial: string; notAfter: Date; fingerprint256: string } | null {
    const current = this.#cert(id).current;
    if (!current) return null;
    const { serialNumber, notAfter, fingerprint256 } = current.info;
    return { chainPem: current.chainPem, serial: serialNumber, notAfter, fingerprint256 };
  }

  /** Key and chain of `id`, for outbound mTLS agents. Handle the key as the secret it is. */
  credentials(id: string): { key: PrivateKey; chainPem: string; serial: string } | null {
    const current = this.#cert(id).current;
    return current
      ? { key: current.key, chainPem: current.chainPem, serial: current.info.serialNumber }
      : null;
  }

  /** Loads `id` into memory if it is only known by its stored pointer (large fleets load lazily). */
  async load(id: string): Promise<boolean> {
    return (await this.#cert(id).materialize()) !== undefined;
  }

  /**
   * Re-reads every stored pointer now and adopts newer certificates other replicas stored (what
   * the periodic reconcile does). Resolves when the pass is complete.
   */
  async reconcile(): Promise<void> {
    this.#assertNotStopped();
    await Promise.all([...this.#certs.values()].map((cert) => reconcile(this.#rt, cert)));
  }

  /** Which managed certificate answers a server name (exact, then wildcard). */
  lookup(servername: string): string | undefined {
    return this.#rt.cache.lookup(servername);
  }

  status(): CertificateStatus[] {
    const now = this.#o.clock.now();
    return [...this.#certs.values()].map((cert) => cert.status(now));
  }

  /** Live, and whether each certificate is served, valid, not expiring, not failed to deploy (the health handler's facts). */
  health(options: ManagerHealthOptions = {}): HealthReport {
    return managerHealth(
      this.status(),
      this.#o.clock.now(),
      options,
      (id) => this.#certs.get(id)?.unverified,
    );
  }

  /** This replica's id among replicas sharing the store. */
  get replicaId(): string {
    return this.#o.replicaId;
  }

  // ---- internals -------------------------------------------------------------------------

  /** Up to `eagerLoadLimit` certificates are loaded at start-up; beyond it, on their first handshake. */
  #eager(): boolean {
    return this.#certs.size <= this.#o.eagerLoadLimit;
  }

  #cert(id: string): ManagedCertificate {
    const cert = this.#certs.get(id);
    if (!cert) throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no managed certificate with id "${id}"`);
    return cert;
  }

  /** Holds the process while running: always with keepAlive true, with 'auto' while nothing is attached. */
  #updateHold(): void {
    const { keepAlive } = this.#o;
    this.#hold.set(
      this.#rt.running() && (keepAlive === true || (keepAlive === 'auto' && this.#rt.attachments.size === 0)),
    );
  }

  #assertNotStopped(): void {
    if (this.#rt.stopped()) throw new CertkeeperError('MANAGER_STOPPED', 'the manager has been stopped');
  }

  /** A pointer changed in the store (cluster/sync.ts): the certificate it belongs to re-reads it. */
  #onPointer(key: string): void {
    const parts = layout.parseCertificate(key);
    if (parts?.rest !== 'current.json') return;
    for (const cert of this.#certs.values()) {
      // Under its id; or under its first name, by a replica still running an earlier version.
      const mine =
        parts.id !== undefined
          ? parts.id === cert.id
          : parts.legacyName === certificateName(cert.config.primary);
      if (mine && this.#rt.issuersFor(cert.config).some((i) => issuerKey(i.id) === parts.issuer))
        void reconcile(this.#rt, cert);
    }
  }
}

/** Creates a certificate manager; call `start()` to load and begin renewing. */
export function createCertificateManager(options: ManagerOptions): CertificateManager {
  return new CertificateManager(options);
}
