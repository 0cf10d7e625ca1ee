/**
 * An issuer limited to some purposes, for a manager that mixes sources: with certificates
 * another tool writes (server) and a CA for client certificates, the CA limited to `client`
 * never replaces a server certificate whose files did not change when the manager tried its
 * issuers in order. The manager applies one issuer list to all its certificates, so this is
 * how one list serves both.
 */
import { optionError } from '../errors.js';
import type { CertificatePurpose, Issuer } from '../issuers/issuer.js';

export function limitPurposes(issuer: Issuer, purposes: readonly CertificatePurpose[]): Issuer {
  if (purposes.length === 0 || purposes.some((p) => p !== 'server' && p !== 'client'))
    throw optionError('purposes', "must list 'server', 'client' or both", 'limitPurposes');
  const limited: Issuer = {
    id: issuer.id,
    ...(issuer.challengeTypes && { challengeTypes: issuer.challengeTypes }),
    issue: (request, context) => issuer.issue(request, context),
    supportsPurpose: (purpose) => purposes.includes(purpose) && (issuer.supportsPurpose?.(purpose) ?? true),
  };
  if (issuer.renew) limited.renew = (request, context) => issuer.renew!(request, context);
  if (issuer.revoke) limited.revoke = (c, reason, context) => issuer.revoke!(c, reason, context);
  if (issuer.trustAnchors) limited.trustAnchors = (context) => issuer.trustAnchors!(context);
  if (issuer.renewalWindow) limited.renewalWindow = (c, context) => issuer.renewalWindow!(c, context);
  if (issuer.close) limited.close = () => issuer.close!();
  if (issuer.bind) limited.bind = (binding) => issuer.bind!(binding);
  return limited;
}
