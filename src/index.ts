// Public API of certkeeper. Every exported name is listed here explicitly.

export {
  type Dns01Options,
  Dns01Solver,
  type DnsProvider,
  dns01Record,
  dns01Value,
} from './challenges/dns-01.js';
export {
  createHttp01Handler,
  type Http01Handler,
  type Http01ServerOptions,
  Http01Solver,
  startHttp01Server,
} from './challenges/http-01.js';
export { ChallTestSrvProvider } from './challenges/providers/challtestsrv.js';
export { type Rfc2136Options, Rfc2136Provider } from './challenges/providers/rfc2136.js';
export type { ChallengeSolver, ChallengeTask, ChallengeType } from './challenges/solver.js';
export { AlpnChallengeRegistry } from './challenges/tls-alpn-01/registry.js';
export { createAlpnCertificate, TlsAlpn01Solver, tlsAlpnSupported } from './challenges/tls-alpn-01/solver.js';
export { type Clock, systemClock } from './clock.js';
export { type CertificateSpec, createCertificate, randomSerial } from './crypto/certificate-builder.js';
export { type Csr, type CsrOptions, createCsr, inspectCsr } from './crypto/csr.js';
export {
  type CertificateInfo,
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  inspectCertificate,
  type ParsedCertificate,
  parseCertificates,
} from './crypto/inspect.js';
export { DEFAULT_KEY_TYPE, isKeyType, KEY_TYPES, type KeyType, PrivateKey } from './crypto/keys.js';
export {
  canonicalIp,
  hostMatches,
  type Identifier,
  type NameType,
  nameCovered,
  normalizeName,
  parseName,
  parseNames,
} from './crypto/names.js';
export { type PemBlock, parsePem, toPem } from './crypto/pem.js';
export {
  assertValidBundle,
  type BundleInput,
  type BundleVerdict,
  DEFAULT_SKEW_MS,
  type Purpose,
  validateBundle,
} from './crypto/validate.js';
// Operations: health, the status page, diagnostics channels (metrics: `certkeeper/metrics`).
export { publishDiagnostics } from './diagnostics/bridge.js';
export {
  CHANNELS as DIAGNOSTIC_CHANNELS,
  type DeployMessage,
  type LiveCheckMessage,
  type RenewalContext,
} from './diagnostics/channels.js';
export { CertkeeperError, type ErrorCode, isCertkeeperError, isRetryable } from './errors.js';
export {
  type CaCertificateUpdate,
  type GrpcCertificateProvider,
  type IdentityCertificateUpdate,
  ManagedIdentityProvider,
  TrustBundleCaProvider,
} from './grpc/certificate-providers.js';
export {
  type GrpcChannelCredentialsOptions,
  type GrpcServerCredentialsOptions,
  grpcChannelCredentials,
  grpcServerCredentials,
} from './grpc/credentials.js';
export {
  createRotatingGrpcClient,
  type RotatingGrpcClient,
  type RotatingGrpcClientOptions,
} from './grpc/rotating-client.js';
export { AcmeIssuer, type AcmeIssuerOptions } from './issuers/acme/acme-issuer.js';
export { certId } from './issuers/acme/ari.js';
export type { PollOptions } from './issuers/acme/order.js';
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
  RenewalWindow,
  RevocationReason,
} from './issuers/issuer.js';
export { normalizeFingerprint, rootFingerprint } from './issuers/step-ca/bootstrap.js';
export { StepCaClient, type StepCaClientOptions } from './issuers/step-ca/client.js';
export {
  loadProvisionerKey,
  type MintTokenOptions,
  mintRenewToken,
  mintRevokeToken,
  mintToken,
  type ProvisionerKey,
  type ProvisionerKeyOptions,
} from './issuers/step-ca/mint.js';
export { StepCaIssuer, type StepCaIssuerOptions } from './issuers/step-ca/step-ca-issuer.js';
export { readToken, type TokenClaims, tokenId } from './issuers/step-ca/token.js';
export { type TokenOption, TokenSource } from './issuers/step-ca/token-source.js';
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
  loggerKind,
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
export { type ClientGeneration, ClientIdentity, type ClientIdentityOptions } from './mtls/generations.js';
export { createRotatingAgent, RotatingAgent, type RotatingAgentOptions } from './mtls/rotating-agent.js';
export {
  createRotatingDispatcher,
  type RotatingDispatcher,
  type RotatingDispatcherOptions,
} from './mtls/rotating-dispatcher.js';
export {
  type CertificateHealth,
  DEFAULT_EXPIRY_MARGIN_MS,
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
export {
  type AttachOptions,
  CLIENT_AUTH_SESSION_TIMEOUT,
  type ClientAuthOptions,
  ServerAttachment,
} from './server/attachment.js';
export {
  createHttp2SecureServer,
  createHttpsServer,
  createTlsServer,
  type ManagedServerOptions,
} from './server/create-server.js';
export { type PeerIdentity, peerIdentity } from './server/peer-identity.js';
// Shared stores (Redis, PostgreSQL; drivers are optional peer dependencies, loaded on first use),
// encryption of private keys at rest, and change notification.
export { CachedStore, type CachedStoreOptions } from './store/cached-store.js';
export { EncryptedStore, type EncryptedStoreOptions } from './store/encrypted-store.js';
export {
  ENCRYPTION_KEY_ENV,
  type EncryptionKey,
  type EncryptionKeyInput,
  type EncryptionOptions,
} from './store/envelope.js';
export { FileStore, type FileStoreOptions } from './store/file-store.js';
export { assertStoreKey, certificateName, issuerKey, layout } from './store/layout.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export { type PgPoolLike, PostgresStore, type PostgresStoreOptions } from './store/postgres-store.js';
export { type RedisClientLike, RedisStore, type RedisStoreOptions } from './store/redis-store.js';
export type { EncryptionChoice, ReencryptResult } from './store/sealer.js';
export type { SharedStoreOptions } from './store/shared-store.js';
export type {
  LockLease,
  LockOptions,
  RecordSealing,
  SealedRecord,
  Store,
  StoreChange,
  StoreChangeListener,
  StoreStat,
} from './store/store.js';
export { DEFAULT_LOCK_TTL_MS } from './store/store.js';
export { type WithLockOptions, withLock } from './store/with-lock.js';
// Trust: bundles of accepted CAs, their sources, the guarded store, and root rotation.
export { BootstrapTrustSource, type BootstrapTrustSourceOptions } from './trust/bootstrap-source.js';
export { makeBundle, staticTrust, type TrustBundle, type TrustBundleSource } from './trust/bundle.js';
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
