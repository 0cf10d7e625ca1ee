// `certkeeper/step-ca`: token enrollment with a step-ca compatible CA, minting the one-time
// tokens a deployment hands its services, and trusting the CA's root by fingerprint.
// Every exported name is listed.

export { normalizeFingerprint, rootFingerprint } from '../issuers/step-ca/bootstrap.js';
export {
  loadProvisionerKey,
  type MintTokenOptions,
  mintRenewToken,
  mintRevokeToken,
  mintToken,
  type ProvisionerKey,
  type ProvisionerKeyOptions,
} from '../issuers/step-ca/mint.js';
export { StepCaIssuer, type StepCaIssuerOptions } from '../issuers/step-ca/step-ca-issuer.js';
export { readToken, type TokenClaims, tokenId } from '../issuers/step-ca/token.js';
export type { TokenOption } from '../issuers/step-ca/token-source.js';
export { BootstrapTrustSource, type BootstrapTrustSourceOptions } from '../trust/bootstrap-source.js';
