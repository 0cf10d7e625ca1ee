/**
 * Rotating credentials for @grpc/grpc-js (>= 1.12, an optional peer dependency loaded on first
 * use): a server that presents a managed certificate and, with `trust`, requires client
 * certificates from that bundle; a channel that verifies the server against a bundle and, with
 * `id`, presents a managed client certificate. New connections take the newest certificate and
 * anchors; open HTTP/2 sessions keep theirs until they close.
 */
import type * as grpc from '@grpc/grpc-js';
import { CertkeeperError, optionError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { loadPeer } from '../store/peer.js';
import { staticTrust, type TrustBundleSource } from '../trust/bundle.js';
import { ManagedIdentityProvider, TrustBundleCaProvider } from './certificate-providers.js';

type Grpc = typeof grpc;

/** Options of `grpcServerCredentials`. */
export interface GrpcServerCredentialsOptions {
  /** The managed server certificate to present. */
  id: string;
  /** Accepted client CAs; given, clients must present a certificate (unless `requireClientCert: false`). */
  trust?: TrustBundleSource | readonly string[];
  /** Default true when `trust` is given. */
  requireClientCert?: boolean;
}

/** Options of `grpcChannelCredentials`. */
export interface GrpcChannelCredentialsOptions {
  /** Accepted server CAs (e.g. a TrustStore, or `await manager.trustAnchors()`). */
  trust: TrustBundleSource | readonly string[];
  /** A managed client certificate (purpose 'client') to present, for mutual TLS. */
  id?: string;
  /** grpc-js verify options (checkServerIdentity, …). */
  verifyOptions?: grpc.VerifyOptions;
}

export async function loadGrpc(owner: string): Promise<Grpc> {
  // grpc-js is CommonJS: its exports arrive as named exports or under `default`, by loader.
  const module = (await loadPeer('@grpc/grpc-js', owner, () => import('@grpc/grpc-js'))) as Grpc & {
    default?: Grpc;
  };
  const api = module.experimental ? module : module.default;
  if (!api?.experimental?.createCertificateProviderServerCredentials) {
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      `${owner} needs @grpc/grpc-js >= 1.12 (grpc.experimental.CertificateProvider)`,
    );
  }
  return api;
}

const asSource = (trust: TrustBundleSource | readonly string[]): TrustBundleSource =>
  typeof (trust as TrustBundleSource).current === 'function'
    ? (trust as TrustBundleSource)
    : staticTrust(trust as readonly string[]);

export async function grpcServerCredentials(
  manager: CertificateManager,
  options: GrpcServerCredentialsOptions,
): Promise<grpc.ServerCredentials> {
  const api = await loadGrpc('grpcServerCredentials');
  const identity = new ManagedIdentityProvider(manager, options.id);
  const ca = options.trust === undefined ? null : new TrustBundleCaProvider(asSource(options.trust));
  const require = options.requireClientCert ?? ca !== null;
  if (require && ca === null) {
    throw optionError('requireClientCert', 'needs trust', 'grpcServerCredentials');
  }
  // grpc-js's exported parameter names are swapped; the order is (identity, ca, require), as its
  // own xDS code calls it.
  return api.experimental.createCertificateProviderServerCredentials(identity, ca, require);
}

export async function grpcChannelCredentials(
  manager: CertificateManager,
  options: GrpcChannelCredentialsOptions,
): Promise<grpc.ChannelCredentials> {
  const api = await loadGrpc('grpcChannelCredentials');
  const ca = new TrustBundleCaProvider(asSource(options.trust));
  if (options.id !== undefined) {
    const status = manager.status().find((s) => s.id === options.id);
    if (status?.purpose !== 'client') {
      throw optionError(
        'id',
        `("${options.id}") must name a managed certificate with purpose 'client'`,
        'grpcChannelCredentials',
      );
    }
  }
  const identity = options.id === undefined ? null : new ManagedIdentityProvider(manager, options.id);
  return api.experimental.createCertificateProviderChannelCredentials(ca, identity, options.verifyOptions);
}
