// Public API of certkeeper. Every exported name is listed here explicitly.
export { CertkeeperError, type ErrorCode, isCertkeeperError } from './errors.js';
export { assertStoreKey, certificateName, issuerKey, layout } from './store/layout.js';
export type { LockLease, LockOptions, Store, StoreStat } from './store/store.js';
export { DEFAULT_LOCK_TTL_MS } from './store/store.js';
export { PrivateKey, KEY_TYPES, DEFAULT_KEY_TYPE, isKeyType, type KeyType } from './crypto/keys.js';
export {
  canonicalIp,
  hostMatches,
  nameCovered,
  normalizeName,
  parseName,
  parseNames,
  type Identifier,
  type NameType,
} from './crypto/names.js';
export { parsePem, toPem, type PemBlock } from './crypto/pem.js';
export { createCsr, inspectCsr, type Csr, type CsrOptions } from './crypto/csr.js';
export {
  inspectCertificate,
  parseCertificates,
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  type CertificateInfo,
  type ParsedCertificate,
} from './crypto/inspect.js';
export {
  assertValidBundle,
  validateBundle,
  DEFAULT_SKEW_MS,
  type BundleInput,
  type BundleVerdict,
  type Purpose,
} from './crypto/validate.js';
export { createCertificate, randomSerial, type CertificateSpec } from './crypto/certificate-builder.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export { FileStore, type FileStoreOptions } from './store/file-store.js';
export { withLock, type WithLockOptions } from './store/with-lock.js';
