// `certkeeper/crypto`: the toolkit under the manager, for tools and tests that make keys, CSRs
// and certificates, read them, and validate a bundle the way the manager does before serving it.
// Every exported name is listed.

export { type CertificateSpec, createCertificate } from '../crypto/certificate-builder.js';
export { type Csr, type CsrOptions, createCsr, inspectCsr } from '../crypto/csr.js';
export {
  type CertificateInfo,
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  inspectCertificate,
  type ParsedCertificate,
  parseCertificates,
} from '../crypto/inspect.js';
export { DEFAULT_KEY_TYPE, isKeyType, KEY_TYPES, type KeyType, PrivateKey } from '../crypto/keys.js';
export {
  hostMatches,
  type Identifier,
  type NameType,
  normalizeName,
  parseName,
  parseNames,
} from '../crypto/names.js';
export { type PemBlock, parsePem, toPem } from '../crypto/pem.js';
export {
  assertValidBundle,
  type BundleInput,
  type BundleVerdict,
  DEFAULT_SKEW_MS,
  type Purpose,
  validateBundle,
} from '../crypto/validate.js';
