/**
 * What the rotating agent, dispatcher and gRPC provider share: "which client identity and which
 * trust anchors are current", as one generation key that changes when either does.
 *
 * The check is a map lookup in the manager and a version compare on the trust source, cheap
 * enough to run on every request: a missed event can never leave an old identity in use.
 */

import type { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, optionError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { staticTrust, type TrustBundleSource } from '../trust/bundle.js';
import type { GenerationPool } from './generation-pool.js';

/**
 * Everything a TLS client needs for one generation. The private key stays a `PrivateKey`, which
 * prints and serialises as "redacted", so logging a generation cannot leak it; PEM is made only
 * where an agent is built.
 */
export interface ClientGeneration {
  /** `<serial>/<trust version>`; a new value means a new identity or new anchors. */
  readonly key: string;
  readonly serial: string;
  readonly privateKey: PrivateKey;
  readonly chainPem: string;
  /** Accepted server CAs; undefined means Node's default roots. */
  readonly ca: string[] | undefined;
}

/** Options shared by the rotating agent, dispatcher and gRPC client. */
export interface ClientIdentityOptions {
  /** Accepted server CAs: a trust source (e.g. a `TrustStore`) or fixed PEMs. Default: Node's roots. */
  trust?: TrustBundleSource | readonly string[];
}

/** A managed client certificate followed generation by generation, with the CAs its peers are checked against. */
export class ClientIdentity {
  readonly manager: CertificateManager;
  readonly id: string;
  readonly trust: TrustBundleSource | undefined;
  #current: ClientGeneration | undefined;

  constructor(manager: CertificateManager, id: string, options: ClientIdentityOptions = {}) {
    const status = manager.status().find((s) => s.id === id);
    if (!status) {
      throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no managed certificate with id "${id}"`);
    }
    if (status.purpose !== 'client') {
      throw optionError(
        'id',
        `("${id}") names a certificate of purpose '${status.purpose}'; outbound mTLS needs purpose 'client' (EKU clientAuth)`,
      );
    }
    this.manager = manager;
    this.id = id;
    const trust = options.trust;
    this.trust = trust === undefined ? undefined : isSource(trust) ? trust : staticTrust(trust);
  }

  /** The generation new connections must use; throws while the certificate is not yet obtained. */
  current(): ClientGeneration {
    // One synchronous read of the manager's state: key, chain and serial always belong together.
    const credentials = this.manager.credentials(this.id);
    if (!credentials) {
      throw new CertkeeperError(
        'CERTIFICATE_UNAVAILABLE',
        `client certificate "${this.id}" is not available yet (await manager.ready())`,
      );
    }
    const bundle = this.trust?.current();
    const key = `${credentials.serial}/${bundle?.version ?? 0}`;
    if (this.#current?.key === key) return this.#current;
    this.#current = {
      key,
      serial: credentials.serial,
      privateKey: credentials.key,
      chainPem: credentials.chainPem,
      ca: bundle ? [...bundle.certificates] : undefined,
    };
    return this.#current;
  }

  /**
   * Calls `listener` after every change of identity or trust (manager swaps and adoptions of this
   * id, new trust bundles). Returns the function that stops it.
   */
  onChange(listener: () => void): () => void {
    const onManager = (event: { id: string }) => {
      if (event.id === this.id) listener();
    };
    this.manager.on('swapped', onManager);
    this.manager.on('adopted', onManager);
    this.manager.on('loaded', onManager);
    const unsubscribe = this.trust?.subscribe(() => listener());
    return () => {
      this.manager.off('swapped', onManager);
      this.manager.off('adopted', onManager);
      this.manager.off('loaded', onManager);
      unsubscribe?.();
    };
  }
}

/**
 * Binds `pool` to `identity`: the function returned hands out the member of the identity's
 * current generation (built by `build` when the generation changed, the previous one retired).
 * A change of identity or trust rotates the pool at once, so idle connections of the old identity
 * close now rather than at the next request, until the pool closes.
 */
export function followIdentity<M>(
  identity: ClientIdentity,
  pool: GenerationPool<M>,
  build: (generation: ClientGeneration) => M,
): () => M {
  const current = (): M => {
    pool.assertOpen();
    const generation = identity.current();
    return pool.acquire(generation.key, () => build(generation));
  };
  const stop = identity.onChange(() => {
    if (pool.closed || !identity.manager.certificate(identity.id)) return;
    try {
      current();
    } catch {
      // This runs inside the manager's event emission: a failure here (a trust bundle Node
      // refuses) must not reach the manager; the next request reports it.
    }
  });
  pool.signal.addEventListener('abort', stop, { once: true });
  return current;
}

function isSource(value: TrustBundleSource | readonly string[]): value is TrustBundleSource {
  return typeof (value as TrustBundleSource).current === 'function';
}
