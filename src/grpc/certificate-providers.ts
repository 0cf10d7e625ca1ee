/**
 * grpc-js `CertificateProvider`s fed by certkeeper. grpc-js rebuilds its TLS
 * options from the latest identity and CA updates for every new connection (open HTTP/2 sessions
 * keep theirs), and refuses connections while an update is null, so these providers publish
 * only complete updates and never null: an identity is published once key and chain are known,
 * then again with each new generation; a CA bundle only when it has at least one anchor.
 *
 * The interfaces are declared here structurally (they match `grpc.experimental.CertificateProvider`
 * of @grpc/grpc-js >= 1.12) so that this module does not load grpc-js.
 */
import type { CertificateManager } from '../manager/manager.js';
import type { TrustBundle, TrustBundleSource } from '../trust/bundle.js';

/** An identity update for grpc-js: certificate chain and private key, PEM. */
export interface IdentityCertificateUpdate {
  certificate: Buffer;
  privateKey: Buffer;
}
/** A CA update for grpc-js: the accepted CA certificates, PEM. */
export interface CaCertificateUpdate {
  caCertificate: Buffer;
}
type IdentityListener = (update: IdentityCertificateUpdate | null) => void;
type CaListener = (update: CaCertificateUpdate | null) => void;

/** grpc-js's CertificateProvider contract. */
export interface GrpcCertificateProvider {
  addCaCertificateListener(listener: CaListener): void;
  removeCaCertificateListener(listener: CaListener): void;
  addIdentityCertificateListener(listener: IdentityListener): void;
  removeIdentityCertificateListener(listener: IdentityListener): void;
}

/**
 * The current value reaches a new listener on the next microtask, never inside `add…Listener`:
 * grpc-js's server credentials subscribe to the providers *before* registering the server that
 * waits for the update (`_addWatcher`), so an update delivered synchronously is lost and the
 * server refuses every connection (seen with grpc-js 1.14). Its own FileWatcherCertificateProvider
 * is asynchronous by nature.
 */
function deliverLater(deliver: () => unknown): void {
  queueMicrotask(() => {
    deliver();
  });
}

/** Publishes managed certificate `id` (server or client purpose) as the TLS identity. */
export class ManagedIdentityProvider implements GrpcCertificateProvider {
  readonly #manager: CertificateManager;
  readonly #id: string;
  readonly #listeners = new Set<IdentityListener>();
  #latest: { serial: string; update: IdentityCertificateUpdate } | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(manager: CertificateManager, id: string) {
    manager.certificate(id); // throws UNKNOWN_CERTIFICATE for an id the manager does not have
    this.#manager = manager;
    this.#id = id;
  }

  /** The serial published last (undefined before the certificate is available). */
  get serial(): string | undefined {
    return this.#latest?.serial;
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    if (!this.#unsubscribe) this.#watch();
    this.#refresh();
    this.#listeners.add(listener);
    deliverLater(() => this.#listeners.has(listener) && this.#latest && listener(this.#latest.update));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
  }

  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}

  #watch(): void {
    const onEvent = (event: { id: string }) => {
      if (event.id === this.#id) this.#refresh();
    };
    for (const name of ['swapped', 'adopted', 'loaded'] as const) this.#manager.on(name, onEvent);
    this.#unsubscribe = () => {
      for (const name of ['swapped', 'adopted', 'loaded'] as const) this.#manager.off(name, onEvent);
    };
  }

  #refresh(): void {
    const credentials = this.#manager.credentials(this.#id);
    if (!credentials || credentials.serial === this.#latest?.serial) return;
    this.#latest = {
      serial: credentials.serial,
      update: {
        certificate: Buffer.from(credentials.chainPem),
        privateKey: Buffer.from(credentials.key.toPem()),
      },
    };
    for (const listener of this.#listeners) listener(this.#latest.update);
  }
}

/** Publishes a trust bundle (accepted peer CAs) as the CA certificate. */
export class TrustBundleCaProvider implements GrpcCertificateProvider {
  readonly #trust: TrustBundleSource;
  readonly #listeners = new Set<CaListener>();
  #latest: { version: number; update: CaCertificateUpdate } | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(trust: TrustBundleSource) {
    this.#trust = trust;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#unsubscribe ??= this.#trust.subscribe((bundle) => this.#publish(bundle));
    this.#publish(this.#trust.current());
    this.#listeners.add(listener);
    deliverLater(() => this.#listeners.has(listener) && this.#latest && listener(this.#latest.update));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#listeners.delete(listener);
    if (this.#listeners.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
  }

  addIdentityCertificateListener(): void {}
  removeIdentityCertificateListener(): void {}

  #publish(bundle: TrustBundle): void {
    if (bundle.certificates.length === 0 || bundle.version === this.#latest?.version) return;
    this.#latest = {
      version: bundle.version,
      update: { caCertificate: Buffer.from(bundle.certificates.join('')) },
    };
    for (const listener of this.#listeners) listener(this.#latest.update);
  }
}
