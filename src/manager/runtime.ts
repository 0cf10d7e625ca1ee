/**
 * What the managed certificates of one manager share: the resolved options, the cache handshakes
 * read, the deploy targets, the events, the one signal `stop()` aborts, the background work
 * `stop()` waits for, and the one Scheduler that wakes each certificate when it is due. The
 * manager builds it once and hands it to every `ManagedCertificate`; nothing in it calls back
 * into the manager.
 */
import { setMaxListeners } from 'node:events';
import type { EventEmitter } from 'eventemitter3';
import type { ChallengeContext } from '../challenges/solver.js';
import { AlpnChallengeRegistry, type TlsAlpnHost } from '../challenges/tls-alpn-01/registry.js';
import { liveMembers } from '../cluster/membership.js';
import { validateBundle } from '../crypto/validate.js';
import type { DeployTarget } from '../deploy/target.js';
import { type CertkeeperError, describeCause } from '../errors.js';
import { IssuerCooldowns } from '../issuers/cooldown.js';
import type { Issuer, IssuerContext } from '../issuers/issuer.js';
import type { AttachmentHost, ServerAttachment } from '../server/attachment.js';
import { CertificateCache } from '../server/certificate-cache.js';
import type { ManagerEvents } from './events.js';
import type { CertificateConfig, ResolvedOptions } from './options.js';
import type { Generation } from './records.js';
import type { RevocationWatch } from './revocation-watch.js';
import { Scheduler } from './scheduler.js';

export class Runtime {
  readonly options: ResolvedOptions;
  readonly events: EventEmitter<ManagerEvents>;
  /** What handshakes read: written by the certificates (install) and the manager (add, remove). */
  readonly cache = new CertificateCache();
  readonly attachments = new Set<ServerAttachment>();
  /** Checks the CRLs of what is served (revoke.ts); set by the manager, run while running. */
  revocations: RevocationWatch | undefined;
  /** Deploy targets other than attached servers (`targets`, `addTarget`). */
  readonly targets = new Set<DeployTarget>();
  /** TLS-ALPN-01 challenge certificates, shared by issuers (writers) and attachments (readers). */
  readonly alpn = new AlpnChallengeRegistry();
  /** Wakes a certificate (its `tick`) when it is due; see scheduler.ts. */
  readonly scheduler: Scheduler;
  /**
   * Background work that uses the store (ARI refreshes, reconcile passes), and the issuer calls
   * of attempts until they settle: an attempt given up (time limit, stop) stops waiting for its
   * issuer, but the issuer may still be cleaning up (challenge records, authorizations) through
   * the store. stop() waits for all of it, bounded.
   */
  readonly background = new Set<Promise<unknown>>();
  /** Issuers whose CA failed lately go behind the others for a while (issuers/cooldown.ts). */
  readonly cooldowns: IssuerCooldowns;
  readonly #abort = new AbortController();
  #phase: 'new' | 'running' | 'stopped' = 'new';
  #tlsAlpn: TlsAlpnHost | undefined;

  constructor(
    options: ResolvedOptions,
    events: EventEmitter<ManagerEvents>,
    tick: (id: string) => Promise<void>,
  ) {
    this.options = options;
    this.events = events;
    // Every running obtain, store call and lock wait listens on this one signal; with a large
    // fleet and `concurrency` above 10 that is many listeners by design, not a leak.
    setMaxListeners(0, this.#abort.signal);
    this.scheduler = new Scheduler(options.clock, tick, { concurrency: options.concurrency });
    this.cooldowns = new IssuerCooldowns(options.clock, options.issuerCooldown);
  }

  /** Aborted when the manager stops. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get phase(): 'new' | 'running' | 'stopped' {
    return this.#phase;
  }

  running(): boolean {
    return this.#phase === 'running';
  }

  stopped(): boolean {
    return this.#phase === 'stopped';
  }

  begin(): void {
    this.#phase = 'running';
    this.revocations?.start();
  }

  /** Ends every attempt and timer: the signal aborts, the scheduler and the CRL watch stop. */
  end(): void {
    this.#phase = 'stopped';
    this.scheduler.stop();
    if (this.revocations) this.track(this.revocations.stop());
    this.#abort.abort();
  }

  /**
   * Closes the connections of attached servers still presenting the certificate `fingerprint256`
   * (after its replacement was deployed): gracefully, destroyed at `retireBoundMs`.
   */
  async retireConnections(fingerprint256: string): Promise<void> {
    const { revocationCheck, logger } = this.options;
    const boundMs = (revocationCheck ? revocationCheck.retireBoundMs : undefined) ?? 10_000;
    const results = await Promise.all(
      [...this.attachments].map((a) =>
        a.connections.retire((c) => c.servedFingerprint() === fingerprint256, { boundMs }),
      ),
    );
    const matched = results.reduce((n, r) => n + r.matched, 0);
    if (matched > 0)
      logger.info('connections presenting a revoked certificate retired', {
        connections: matched,
        forced: results.reduce((n, r) => n + r.forced, 0),
      });
  }

  readonly emit: EventEmitter<ManagerEvents>['emit'] = (event, ...args) => this.events.emit(event, ...args);

  /** What attached servers read: the cache, the TLS-ALPN-01 challenges (never the manager). */
  attachmentHost(): AttachmentHost {
    const { logger, issuers } = this.options;
    return {
      cache: this.cache,
      logger: {
        debug: (m, f) => logger.debug(m, f),
        info: (m, f) => logger.info(m, f),
        warn: (m, f) => logger.warn(m, f),
        error: (m, f) => logger.error(m, f),
      },
      alpnChallenges: this.alpn,
      usesTlsAlpn: () => issuers.some((i) => i.challengeTypes?.includes('tls-alpn-01')),
    };
  }

  /** Every deploy target: attached servers, then the configured or added targets. */
  allTargets(): DeployTarget[] {
    return [...this.attachments, ...this.targets];
  }

  /** Runs `work` in the background; stop() waits for it (bounded). Returns it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.background.add(work);
    const done = () => this.background.delete(work);
    work.then(done, done);
    return work;
  }

  /** Applies outside the deploy path (loaded, adopted): a refusal is logged, the next deploy retries. */
  applyInBackground(target: DeployTarget, id: string, generation: Generation): void {
    this.track(
      target.apply(id, generation, this.#abort.signal).catch((error: unknown) =>
        this.options.logger.warn('a deploy target did not take a certificate', {
          id,
          target: target.name,
          error: describeCause(error),
        }),
      ),
    );
  }

  /** The issuers that may issue `cert`, in order: those it names (`issuer` option), else all. */
  issuersFor(cert: CertificateConfig): Issuer[] {
    const { issuers } = this.options;
    const chosen = cert.issuers?.map((id) => issuers.find((i) => i.id === id)!) ?? issuers;
    return chosen.filter((i) => !i.supportsPurpose || i.supportsPurpose(cert.purpose));
  }

  /**
   * The first problem of a bundle for `cert` now, or null. Anchors are given for fresh issuance
   * only; a stored certificate may be expired (`allowExpired`) and still be served while it is renewed.
   */
  validate(
    cert: CertificateConfig,
    generation: Pick<Generation, 'key' | 'chainPem'>,
    anchors?: string[],
    allowExpired = false,
  ): CertkeeperError | null {
    const verdict = validateBundle({
      key: generation.key,
      chain: generation.chainPem,
      names: cert.names,
      purpose: cert.purpose,
      trustAnchors: anchors,
      now: new Date(this.options.clock.now()),
    });
    if (verdict.ok) return null;
    const problems = allowExpired ? verdict.problems.filter((p) => p.code !== 'EXPIRED') : verdict.problems;
    return problems[0] ?? null;
  }

  /** An issuer's context; solvers of an order also find where TLS-ALPN-01 is answered (`tlsAlpn`). */
  context(signal: AbortSignal): IssuerContext & ChallengeContext {
    const { store, clock, logger, replicaId } = this.options;
    this.#tlsAlpn ??= {
      registry: this.alpn,
      // The replicas to wait for, when others share the store (membership needs `watch`).
      ...(store.watch ? { replicas: { self: replicaId, live: () => liveMembers(store, clock.now()) } } : {}),
    };
    return { store, clock, logger, signal, tlsAlpn: this.#tlsAlpn };
  }
}
