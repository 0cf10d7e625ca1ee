// `certkeeper`: what an application needs to manage its certificates, serve them and check
// them. Every exported name is listed here explicitly; the rest of the public API is in the
// subpath entries (src/entries/, src/testing/, src/metrics/), one per concern:
//   certkeeper/acme     ACME issuer, challenge solvers, DNS providers
//   certkeeper/step-ca  step-ca token enrollment, provisioner tokens, fingerprint trust
//   certkeeper/stores   Redis and PostgreSQL stores, encryption and caching wrappers, the contract
//   certkeeper/crypto   the toolkit: keys, CSRs, certificates, names, PEM, bundle validation
//   certkeeper/grpc     @grpc/grpc-js credentials and rotating clients
//   certkeeper/undici   an undici dispatcher with a rotating client certificate
//   certkeeper/metrics  Prometheus and OpenTelemetry collectors
//   certkeeper/testing  conformance kits and a fake clock
// Names here pull in no optional peer, in code or in types (test/package/consumer.test.ts).

export { type Clock, systemClock } from './clock.js';
export type { KeyType } from './crypto/keys.js';
// Operations: health, the status page, diagnostics channels (metrics: `certkeeper/metrics`).
export { publishDiagnostics } from './diagnostics/bridge.js';
export {
  CHANNELS as DIAGNOSTIC_CHANNELS,
  type DeployMessage,
  type LiveCheckMessage,
  type RenewalContext,
} from './diagnostics/channels.js';
export { CertkeeperError, ERROR_CODES, type ErrorCode, isCertkeeperError, isRetryable } from './errors.js';
export type { CooldownOptions } from './issuers/cooldown.js';
export {
  InternalCA,
  type InternalCAOptions,
  type RootRotationPhase,
  type RootRotationStatus,
  type RotateIntermediateOptions,
} from './issuers/internal-ca.js';
export type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerBinding,
  IssuerContext,
  NameValidation,
  RenewalWindow,
  RevocationReason,
} from './issuers/issuer.js';
export {
  type ConsoleLoggerOptions,
  createConsoleLogger,
  defaultLogger,
  LOG_FORMAT_ENV,
  LOG_LEVEL_ENV,
  type LogFormat,
  type Logger,
  type LoggerStyle,
  type LogLevel,
  silentLogger,
  toLogger,
} from './logger.js';
export type { ManagerEventName, ManagerEvents, ObtainReason } from './manager/events.js';
export {
  CertificateManager,
  type CertificateStatus,
  createCertificateManager,
  type ReadyOptions,
} from './manager/manager.js';
export type { ManagedCertificateOptions, ManagerOptions } from './manager/options.js';
export { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from './manager/policy.js';
export type { RevocationCheckOptions } from './manager/revocation-watch.js';
export type { Issuance } from './manager/status.js';
export { type ClientGeneration, ClientIdentity, type ClientIdentityOptions } from './mtls/generations.js';
export { createRotatingAgent, RotatingAgent, type RotatingAgentOptions } from './mtls/rotating-agent.js';
export {
  type CertificateHealth,
  type HealthOptions,
  type HealthReport,
  health,
  type NotReadyReason,
} from './ops/health.js';
export { createHealthHandler, type HealthHandler, type HealthHandlerOptions } from './ops/health-handler.js';
export type { OpsResponse } from './ops/http.js';
export {
  createStatusPage,
  type PageCertificate,
  type StatusPage,
  type StatusPageOptions,
} from './ops/status-page.js';
export type { AttachOptions, ClientAuthOptions } from './server/attachment.js';
export {
  createHttp2SecureServer,
  createHttpsServer,
  createTlsServer,
  type ManagedServerOptions,
} from './server/create-server.js';
export { type PeerIdentity, peerIdentity } from './server/peer-identity.js';
// Certificates another tool writes (certbot, Kubernetes secrets, Docker secrets) as an issuer.
export { type ReadPair, readPair } from './sources/file-pair.js';
export { FileWatch, type FileWatchEvents, type FileWatchOptions } from './sources/file-source.js';
export {
  FileSourceIssuer,
  type FileSourceIssuerOptions,
  type FollowedManager,
} from './sources/file-source-issuer.js';
export { limitPurposes } from './sources/purposes.js';
// The stores an application constructs itself; shared stores and wrappers: `certkeeper/stores`.
export { FileStore, type FileStoreOptions } from './store/file-store.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export type { Store } from './store/store.js';
// Trust: bundles of accepted CAs, their sources, the guarded store, and root rotation.
export { staticTrust, type TrustBundle, type TrustBundleSource } from './trust/bundle.js';
export { managerChains, type RotateCaOptions, rotateCa } from './trust/ca-rotation.js';
export { bundlePem, writeBundleFile } from './trust/export.js';
export { FileTrustSource, type FileTrustSourceOptions } from './trust/file-source.js';
export { InternalCaTrustSource, type InternalCaTrustSourceOptions } from './trust/internal-ca-source.js';
export { pemSource, type TrustSource } from './trust/source.js';
export {
  type ProtectedChains,
  type RefreshOptions,
  type TrustChange,
  TrustStore,
  type TrustStoreEvents,
  type TrustStoreOptions,
} from './trust/trust-store.js';
export { UrlTrustSource, type UrlTrustSourceOptions } from './trust/url-source.js';
export { VERSION } from './version.js';
