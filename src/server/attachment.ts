/**
 * A Node server as a deploy target. An attachment binds one `tls.Server` (https and http2 secure
 * servers are tls.Servers) to the manager's certificate cache: its SNI handler (sni.ts) answers
 * from the cache, and the default certificate (clients without SNI, unknown names) is the
 * server's own context, replaced with `setSecureContext` when it changes.
 *
 * `setSecureContext` rebuilds the context from only the options passed (docs/platform.md, "Node
 * TLS"), so each call passes the full option set (a snapshot of the server's fields at attach
 * time, overlaid with the caller's `tls` options) plus ticket keys that never change, or mTLS
 * (`ca`) and session resumption (ticket keys) silently break at the first swap.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { AlpnChallengeRegistry } from '../challenges/tls-alpn-01/registry.js';
import { installAlpnChallenges } from '../challenges/tls-alpn-01/server-hook.js';
import type { DeployableGeneration, DeployTarget, LiveCheck } from '../deploy/target.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../logger.js';
import { vetoServerEvents } from '../net/server-events.js';
import type { TrustBundleSource } from '../trust/bundle.js';
import type { CertificateCache } from './certificate-cache.js';
import { ContextCache } from './context-cache.js';
import { ProbeTracker, probe, probeTarget } from './live-verify.js';
import { type ConnectionTracker, retireUntrusted, trackConnections } from './retire.js';
import { CONTEXT_OPTION_KEYS, hideSecretFields } from './server-fields.js';
import { installSniRouting, type SniCallback, SniRouter } from './sni.js';

export interface AttachOptions {
  /**
   * TLS context options for every swap (ca, ciphers, minVersion, sessionTimeout, …). Fields the
   * server already carries are picked up automatically; these override them.
   */
  tls?: tls.SecureContextOptions;
  /** Ids of the managed certificates this server serves. Default: every server certificate. */
  certificates?: string[];
  /** Served without SNI or for unknown names. Default: the first of `certificates`. */
  defaultCertificate?: string;
  /** For a name no certificate covers: serve the default (default) or fail the handshake. */
  unknownName?: 'default' | 'reject';
  /** Check each swap with a real handshake to the server (default true). */
  liveVerify?: boolean;
  /** Bound of the lazily built SNI context cache (default 1000). */
  contextCacheSize?: number;
  /**
   * Answer ACME TLS-ALPN-01 validations on this server (default: when an issuer uses
   * TLS-ALPN-01). Needs Node >= 20.18 / 22.9.
   */
  tlsAlpn01?: boolean;
  /**
   * Application protocols for ordinary clients when TLS-ALPN-01 is answered (default: the
   * server's own ALPNProtocols). A plain tls.Server without ALPN needs this to answer TLS-ALPN-01.
   */
  alpnProtocols?: string[];
  /**
   * Verify client certificates against a trust bundle that may change while serving: sets
   * `requestCert`, `rejectUnauthorized` (= `required`) and `ca` from the bundle, and on each new
   * bundle rebuilds every context with the full option set and new ticket keys (see
   * `ServerAttachment#applyTrust`). Use `peerIdentity(req)` in handlers.
   */
  clientAuth?: ClientAuthOptions;
}

export interface ClientAuthOptions {
  trust: TrustBundleSource;
  /** Refuse clients without a valid certificate (default true); false lets handlers decide. */
  required?: boolean;
  /**
   * Session lifetime in seconds (default 300). A resumed session keeps the identity of its first
   * handshake (TLS 1.3 does not resend the client certificate), so this bounds how long a rotated
   * or distrusted client identity can live on through resumption.
   */
  sessionTimeout?: number;
  /**
   * After a trust change, connections whose client was verified under a CA no longer in the
   * bundle are closed (gracefully: GOAWAY, `Connection: close`, TLS end); those still open this
   * long after are destroyed. Default 10 s.
   */
  retireBoundMs?: number;
}

/** Default session lifetime (s) when client certificates are verified. */
export const CLIENT_AUTH_SESSION_TIMEOUT = 300;
/** What an attachment reads: the manager's certificate cache, and where to log. */
export interface AttachmentHost {
  cache: CertificateCache;
  logger: Logger;
  /** TLS-ALPN-01 challenge certificates held by this process. */
  alpnChallenges: AlpnChallengeRegistry;
  /** Whether any configured issuer solves TLS-ALPN-01. */
  usesTlsAlpn(): boolean;
}

let attachments = 0;

/**
 * A Node server as a deploy target (deploy/target.ts): `apply` makes a generation what new
 * handshakes get, `verify` proves it with a real handshake, `rollback` applies the previous one.
 */
export class ServerAttachment implements DeployTarget {
  /** `node-server-<n>`, numbered per process in attach order: names the target in events. */
  readonly name = `node-server-${++attachments}`;
  readonly server: tls.Server;
  /** Its live connections, to retire those carrying an identity no longer trusted (retire.ts). */
  readonly connections: ConnectionTracker;
  readonly liveVerify: boolean;
  readonly #source: AttachmentHost;
  readonly #router: SniRouter;
  readonly #options: tls.SecureContextOptions;
  #ticketKeys: Buffer;
  #trustVersion = -1;
  #stopTrust: (() => void) | undefined;
  readonly #ids: Set<string> | null;
  readonly #defaultId: string | undefined;
  readonly #unknown: 'default' | 'reject';
  readonly #contexts: ContextCache;
  #defaultServed: string | undefined;
  /** Fingerprint applied per id: its context is dropped when another replaces it. */
  readonly #applied = new Map<string, string>();
  #detached = false;
  #restoreSni: (() => void) | undefined;
  #restoreAlpn: (() => void) | null = null;
  readonly #probes = new ProbeTracker();
  readonly #restoreEvents: () => void;
  /** The SNI handler: exact name, wildcard, then default (the server's own context). */
  readonly sniCallback: SniCallback;

  constructor(server: tls.Server, source: AttachmentHost, options: AttachOptions = {}) {
    if (!(server instanceof tls.Server)) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        'attach(server): server must be a tls.Server, https.Server or http2 secure server',
      );
    }
    this.server = server;
    hideSecretFields(server);
    this.#source = source;
    const snapshot: Record<string, unknown> = {};
    const fields = server as unknown as Record<string, unknown>;
    for (const key of CONTEXT_OPTION_KEYS) if (fields[key] !== undefined) snapshot[key] = fields[key];
    this.#options = { ...snapshot, ...(options.tls ?? {}) } as tls.SecureContextOptions;
    // Keep the server's current ticket keys so sessions issued before attach still resume.
    this.#ticketKeys = options.tls?.ticketKeys ?? server.getTicketKeys?.() ?? randomBytes(48);
    this.#defaultId = options.defaultCertificate ?? options.certificates?.[0];
    // The default is served (to no-SNI clients at least) so it is swapped too, even when the
    // caller did not also list it in `certificates`.
    this.#ids = options.certificates
      ? new Set([...options.certificates, ...(this.#defaultId ? [this.#defaultId] : [])])
      : null;
    this.#unknown = options.unknownName ?? 'default';
    this.liveVerify = options.liveVerify ?? true;
    this.#contexts = new ContextCache(options.contextCacheSize ?? 1000);
    this.connections = trackConnections(server);
    if (options.clientAuth) this.#startClientAuth(options.clientAuth);
    const attachment = this;
    this.#router = new SniRouter({
      server,
      cache: source.cache,
      logger: source.logger,
      unknownName: this.#unknown,
      serves: (id) => this.serves(id),
      get defaultId() {
        return attachment.defaultId;
      },
      get defaultServed() {
        return attachment.#defaultServed;
      },
      contextFor: (generation) =>
        this.#contexts.getOrCreate(generation.info.fingerprint256, () =>
          tls.createSecureContext(this.contextOptions(generation)),
        ),
    });
    this.sniCallback = this.#router.callback;
    this.#restoreSni = installSniRouting(server, this.#router, source.logger);
    if (options.tlsAlpn01 ?? source.usesTlsAlpn()) {
      const restore = installAlpnChallenges(server, source.alpnChallenges, options.alpnProtocols);
      if (restore) {
        const forget = source.alpnChallenges.addServer(server);
        this.#restoreAlpn = () => {
          forget();
          restore();
        };
      } else {
        source.logger.warn(
          'TLS-ALPN-01 not answered on a tls.Server without ALPN; pass attach option alpnProtocols',
        );
      }
    }
    // A server requiring client certificates refuses the live check (it has none): that is no
    // client error to report to the application.
    this.#restoreEvents = vetoServerEvents(server, (event, args) => {
      if (event === 'connection') this.#probes.noteConnection(args[0] as net.Socket);
      return event === 'tlsClientError' && this.#probes.isProbe(args[1]);
    });
  }

  /** The certificate served without SNI. */
  get defaultId(): string | undefined {
    return this.#defaultId ?? this.#source.cache.serverIds()[0];
  }

  serves(id: string): boolean {
    return this.#ids === null ? this.#source.cache.isServer(id) : this.#ids.has(id);
  }

  /** The full option set for a context serving `generation`. */
  contextOptions(generation: DeployableGeneration): tls.SecureContextOptions {
    return {
      ...this.#options,
      key: generation.key.toPem(),
      cert: generation.chainPem,
      ticketKeys: this.#ticketKeys,
    };
  }

  /**
   * Makes `generation` the one served for `id`: builds its context once, and when `id` is this
   * server's default, swaps the server's own context. Open connections keep theirs. The work is
   * done before this returns (the promise only reports it): a handshake right after sees it.
   */
  apply(id: string, generation: DeployableGeneration, _signal?: AbortSignal): Promise<void> {
    try {
      this.#install(id, generation);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(
        new CertkeeperError('DEPLOY_FAILED', `${this.name}: building the TLS context failed`, {
          cause: error,
          details: { target: this.name, id },
        }),
      );
    }
  }

  /** Puts `previous` back (a failed deploy); without one, forgets the context built for `id`. */
  rollback(id: string, previous: DeployableGeneration | null, signal?: AbortSignal): Promise<void> {
    if (previous) return this.apply(id, previous, signal);
    const applied = this.#applied.get(id);
    if (applied !== undefined) this.#contexts.delete(applied);
    this.#applied.delete(id);
    return Promise.resolve();
  }

  /** Detaches from the server (idempotent). */
  async close(): Promise<void> {
    this.detach();
  }

  #install(id: string, generation: DeployableGeneration): void {
    if (!this.serves(id) || this.#detached) return;
    const fp = generation.info.fingerprint256;
    const replaced = this.#applied.get(id);
    if (replaced !== undefined && replaced !== fp) this.#contexts.delete(replaced);
    if (id === this.defaultId) {
      this.server.setSecureContext(this.contextOptions(generation));
      this.#defaultServed = fp;
    } else {
      this.#contexts.getOrCreate(fp, () => tls.createSecureContext(this.contextOptions(generation)));
    }
    this.#applied.set(id, fp);
  }

  /**
   * Verifies that a fresh handshake gets `generation` for `id`. Returns null when the check
   * cannot apply (server not listening, an IP-only certificate that is not the default).
   */
  async verify(
    id: string,
    generation: DeployableGeneration,
    _signal?: AbortSignal,
  ): Promise<(LiveCheck & { serial: string }) | null> {
    if (!this.liveVerify || !this.serves(id) || !this.server.listening) return null;
    const servername = this.#probeName(id, generation);
    if (servername === undefined && id !== this.defaultId) return null;
    const target = probeTarget(this.server);
    const result = await this.#probes.track((register) =>
      probe(this.server, servername, undefined, register),
    );
    if (result.fingerprint256 !== generation.info.fingerprint256) {
      throw new CertkeeperError(
        'LIVE_VERIFY_FAILED',
        `server served ${result.fingerprint256} instead of ${generation.info.fingerprint256} for ${servername ?? '(no SNI)'}`,
        {
          details: {
            expected: generation.info.fingerprint256,
            served: result.fingerprint256,
            servername,
            target: this.name,
          },
        },
      );
    }
    const endpoint = target?.path ?? `${target?.host}:${target?.port}`;
    return { target: this.name, endpoint, fingerprint256: result.fingerprint256, serial: result.serial };
  }

  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#stopTrust?.();
    this.connections.close();
    this.#restoreSni?.();
    this.#restoreEvents();
    this.#restoreAlpn?.();
    this.#contexts.clear();
  }

  #startClientAuth(options: ClientAuthOptions): void {
    const { trust } = options;
    if (typeof trust?.current !== 'function' || typeof trust.subscribe !== 'function') {
      throw new CertkeeperError(
        'INVALID_OPTION',
        'attach option clientAuth.trust must be a TrustBundleSource',
      );
    }
    const timeout = options.sessionTimeout ?? this.#options.sessionTimeout ?? CLIENT_AUTH_SESSION_TIMEOUT;
    if (!Number.isInteger(timeout) || timeout < 1) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        'attach option clientAuth.sessionTimeout must be an integer >= 1',
      );
    }
    this.#options.sessionTimeout = timeout;
    // Per-connection server fields (setSecureContext never resets them): read by Node when it
    // wraps each accepted socket.
    const fields = this.server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
    fields.requestCert = true;
    fields.rejectUnauthorized = options.required ?? true;
    this.applyTrust(trust.current().certificates, trust.current().version);
    this.#stopTrust = trust.subscribe((bundle) => {
      try {
        this.applyTrust(bundle.certificates, bundle.version);
        void retireUntrusted(
          this.connections,
          bundle.certificates,
          options.retireBoundMs,
          this.#source.logger,
        );
      } catch (error) {
        this.#source.logger.error('applying a new trust bundle failed; the previous one is still used', {
          version: bundle.version,
          error: (error as Error).message,
        });
      }
    });
  }

  /**
   * Makes `certificates` the accepted client CAs of every new handshake. Besides `ca`, the ticket
   * keys change: a ticket issued under the old bundle would resume a session whose client was
   * verified against CAs no longer trusted (TLS 1.3 resumption does not re-verify), so every
   * client makes one full handshake under the new bundle. SNI contexts are dropped and rebuilt on
   * their next handshake, since `setSecureContext` only reaches the default context.
   */
  applyTrust(certificates: readonly string[], version: number): void {
    if (version === this.#trustVersion) return;
    this.#trustVersion = version;
    this.#options.ca = [...certificates];
    this.#ticketKeys = randomBytes(48);
    this.#contexts.clear();
    const id = this.defaultId;
    const generation = id === undefined ? undefined : this.#source.cache.current(id);
    if (generation && this.serves(id!)) {
      this.server.setSecureContext(this.contextOptions(generation));
      this.#defaultServed = generation.info.fingerprint256;
      return;
    }
    // The default certificate is not in memory yet: keep the server's own key and certificate.
    const own = this.server as unknown as {
      key?: tls.SecureContextOptions['key'];
      cert?: tls.SecureContextOptions['cert'];
    };
    // Applied even without a certificate of the server's own (SNI routes then supply one): the
    // default context must carry the bundle and the new ticket keys in every case, never Node's
    // public roots.
    this.server.setSecureContext({
      ...this.#options,
      ...(own.key && own.cert ? { key: own.key, cert: own.cert } : {}),
      ticketKeys: this.#ticketKeys,
    });
  }

  #probeName(id: string, generation: DeployableGeneration): string | undefined {
    for (const name of generation.info.dnsNames) {
      const concrete = name.startsWith('*.') ? `certkeeper-probe${name.slice(1)}` : name;
      if (this.#source.cache.lookup(concrete) === id) return concrete;
    }
    return undefined;
  }
}
