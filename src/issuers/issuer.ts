/**
 * The issuer contract: how the manager gets a certificate. An issuer obtains a certificate for a
 * request (`Issuer`: an id and `issue`). Everything else is a capability of its own, with a type
 * guard: renewing a current certificate (`Renewer`: token enrollment renews over mTLS with the old
 * certificate), revoking one (`Revoker`), reporting the trust anchors its chains end at
 * (`AnchorSource`), suggesting a renewal window (`RenewalWindowSource`: ACME ARI), releasing what
 * it holds (`Closable`). The manager detects them once per issuer (`capabilitiesOf`), so a
 * minimal issuer is one method.
 *
 * Issuers receive the manager's store, clock and logger through `IssuerContext` on every call
 * instead of at construction, so one issuer object can serve several managers and tests can
 * hand it whatever store they like.
 */
import type { Clock } from '../clock.js';
import type { Csr } from '../crypto/csr.js';
import type { CertificateInfo } from '../crypto/inspect.js';
import type { KeyType, PrivateKey } from '../crypto/keys.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';

/** What a managed certificate is for: serving TLS or authenticating as a client. */
export type CertificatePurpose = 'server' | 'client';

/** What the manager gives an issuer for one call: store, clock, logger and cancellation. */
export interface IssuerContext {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Aborted when the manager stops or the attempt is given up. */
  signal: AbortSignal;
}

/** What the manager asks an issuer for: the names, key and CSR of one certificate. */
export interface CertificateRequest {
  /** The managed certificate's id. */
  id: string;
  /** Normalised names (DNS, wildcard, IP), the first being the primary name. */
  names: string[];
  purpose: CertificatePurpose;
  keyType: KeyType;
  /** The key to certify; issuers that only need the public half use `csr`. */
  key: PrivateKey;
  /** A CSR for `names`, signed by `key`. */
  csr: Csr;
  /**
   * The CA profile this certificate is ordered under (ACME `profile`), overriding the issuer's own
   * choice; issuers without profiles ignore it.
   */
  profile?: string;
  /** The certificate being replaced, when this is a renewal (ACME ARI `replaces`, mTLS renew). */
  current?: IssuedCertificate & { info: CertificateInfo; key: PrivateKey };
}

/**
 * How the CA checked control of one name of an issued certificate: the ACME challenge type that
 * answered, or an earlier authorization of the account it reused (then the type that validated
 * it, when the CA still says).
 */
export interface NameValidation {
  /** The name as ordered (`*.` in front for a wildcard). */
  identifier: string;
  challenge: 'http-01' | 'tls-alpn-01' | 'dns-01' | null;
  reused: boolean;
}

/** What an issuer returns: the chain, and the key when it is not the requested one. */
export interface IssuedCertificate {
  /** How each name was validated, when the issuer knows (ACME). */
  validation?: NameValidation[];
  /** Leaf first, then intermediates, PEM. A trailing root is tolerated. */
  chainPem: string;
  /**
   * The key the certificate is for, when it is not `request.key` (a renewal that keeps the old
   * key, as step-ca's `/renew` does).
   */
  key?: PrivateKey;
}

/** When the CA suggests renewing a certificate (ACME ARI). */
export interface RenewalWindow {
  start: Date;
  end: Date;
  /** When to ask again (ARI Retry-After). */
  refreshAt?: Date;
}

/** RFC 5280 revocation reasons. */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'caCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation';

/** What a manager hands its issuers at `start()` (see `Issuer.bind`). */
export interface IssuerBinding {
  store: Store;
  /** The manager's `lockTtlMs`: the lease of locks the issuer takes in `store`. */
  lockTtlMs?: number;
}

/** Where certificates come from: an ACME CA, step-ca, the embedded CA, or your own. */
export interface Issuer {
  /** Stable identity; certificates are stored under it (e.g. `internal`, an ACME directory URL). */
  readonly id: string;
  /** ACME challenge types this issuer may use (attached servers answer TLS-ALPN-01 when listed). */
  readonly challengeTypes?: readonly string[];
  /**
   * Failures are CertkeeperErrors. One that another attempt with the same inputs cannot fix sets
   * `details.retryable: false` (or uses a code that is not retryable by default, see
   * `isRetryable`); the manager then waits its longest retry delay. A CA's `details.retryAfterMs`
   * is a floor for the next attempt.
   */
  issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate>;
  /** Renew `request.current` (for CAs that renew with the old certificate). Falls back to `issue`. */
  renew?(
    request: CertificateRequest & { current: NonNullable<CertificateRequest['current']> },
    context: IssuerContext,
  ): Promise<IssuedCertificate>;
  revoke?(
    certificate: { chainPem: string; key?: PrivateKey },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void>;
  /** Root certificates (PEM) that issued chains must end at; an empty list means "not checked". */
  trustAnchors?(context: IssuerContext): Promise<string[]>;
  /** A CA-suggested renewal window (ACME ARI); null means "use the lifetime rule". */
  renewalWindow?(
    certificate: CertificateInfo & { chainPem: string },
    context: IssuerContext,
  ): Promise<RenewalWindow | null>;
  /** Whether this issuer can issue certificates for that purpose (checked at configuration time). */
  supportsPurpose?(purpose: CertificatePurpose): boolean;
  close?(): Promise<void>;
  /**
   * Called by a manager's `start()`, before anything is loaded: an issuer that keeps state in a
   * store (the internal CA) learns the manager's, so it works before its first issuance (a trust
   * source reading the CA's roots after a restart that loaded every certificate from the store).
   */
  bind?(binding: IssuerBinding): void;
}

/** Renews with the current certificate (step-ca's mTLS `/renew`). */
export interface Renewer {
  renew(
    request: CertificateRequest & { current: NonNullable<CertificateRequest['current']> },
    context: IssuerContext,
  ): Promise<IssuedCertificate>;
}

export interface Revoker {
  revoke(
    certificate: { chainPem: string; key?: PrivateKey },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void>;
}

/** Root certificates (PEM) that issued chains must end at; an empty list means "not checked". */
export interface AnchorSource {
  trustAnchors(context: IssuerContext): Promise<string[]>;
}

/** A CA-suggested renewal window (ACME ARI); null means "use the lifetime rule". */
export interface RenewalWindowSource {
  renewalWindow(
    certificate: CertificateInfo & { chainPem: string },
    context: IssuerContext,
  ): Promise<RenewalWindow | null>;
}

export interface Closable {
  close(): Promise<void>;
}

const has = (value: object, method: string): boolean =>
  typeof (value as Record<string, unknown>)[method] === 'function';

export const isRenewer = <T extends object>(issuer: T): issuer is T & Renewer => has(issuer, 'renew');
export const isRevoker = <T extends object>(issuer: T): issuer is T & Revoker => has(issuer, 'revoke');
export const isAnchorSource = <T extends object>(issuer: T): issuer is T & AnchorSource =>
  has(issuer, 'trustAnchors');
export const isRenewalWindowSource = <T extends object>(issuer: T): issuer is T & RenewalWindowSource =>
  has(issuer, 'renewalWindow');
export const isClosable = <T extends object>(issuer: T): issuer is T & Closable => has(issuer, 'close');

/** What one issuer can do beyond `issue`: detected once, here, and nowhere else. */
export interface IssuerCapabilities {
  readonly issuer: Issuer;
  readonly renewer: Renewer | undefined;
  readonly revoker: Revoker | undefined;
  readonly anchors: AnchorSource | undefined;
  readonly window: RenewalWindowSource | undefined;
  readonly closable: Closable | undefined;
}

export function capabilitiesOf(issuer: Issuer): IssuerCapabilities {
  return {
    issuer,
    renewer: isRenewer(issuer) ? issuer : undefined,
    revoker: isRevoker(issuer) ? issuer : undefined,
    anchors: isAnchorSource(issuer) ? issuer : undefined,
    window: isRenewalWindowSource(issuer) ? issuer : undefined,
    closable: isClosable(issuer) ? issuer : undefined,
  };
}
