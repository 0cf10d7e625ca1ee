/**
 * The RFC 5280 CRLReason code (section 5.3.1) of each revocation reason certkeeper accepts: the
 * one map, used where a reason goes on the wire or into a CRL (ACME `revokeCert`, step-ca's
 * `reasonCode`, the embedded CA's CRL entries).
 */
import type { RevocationReason } from './issuer.js';

export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, number>> = Object.freeze({
  unspecified: 0,
  keyCompromise: 1,
  caCompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
});
