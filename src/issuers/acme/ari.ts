/**
 * ACME Renewal Information (RFC 9773): the CA suggests when to renew each certificate. The
 * certificate's identity (certID) is base64url(AKI keyIdentifier) "." base64url(serial DER
 * content bytes); the window is fetched unauthenticated and re-fetched after Retry-After,
 * clamped to [1 minute, 1 day]. A window that ends before it starts is ignored.
 *
 * The window is the CA's to choose, but not past the certificate's usefulness: renewal must
 * leave time for retries before notAfter. A window is cut at the last tenth of the lifetime
 * (`latestRenewal`); one that starts after that point is ignored (the lifetime rule applies).
 *
 * `replaces` (a renewal order naming the certificate it replaces) must never strand a
 * certificate: it is sent only for a certificate this CA is known to have issued, and any refusal
 * of it (409 alreadyReplaced, 403 after an account change, a certificate of another CA or
 * account) is answered by a plain order at once (`Replacements`).
 */
import type { CertificateInfo } from '../../crypto/inspect.js';
import { type CertkeeperError, describeCause, isCertkeeperError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { RenewalWindow } from '../issuer.js';
import { shortType } from './problems.js';
import type { AcmeTransport } from './transport.js';
import { parseRetryAfter } from './transport.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

type CertFacts = Pick<CertificateInfo, 'authorityKeyId' | 'serialNumber' | 'notBefore' | 'notAfter'>;

/** The ARI certID of a certificate, or null when it has no authority key identifier. */
export function certId(info: Pick<CertificateInfo, 'authorityKeyId' | 'serialNumber'>): string | null {
  if (!info.authorityKeyId) return null;
  const aki = Buffer.from(info.authorityKeyId, 'hex').toString('base64url');
  const serial = Buffer.from(info.serialNumber, 'hex').toString('base64url');
  return `${aki}.${serial}`;
}

/** The latest instant a renewal may be planned at: a tenth of the lifetime before notAfter. */
export function latestRenewal(info: Pick<CertificateInfo, 'notBefore' | 'notAfter'>): number {
  const end = info.notAfter.getTime();
  return end - Math.max(0, end - info.notBefore.getTime()) / 10;
}

function renewalInfoEndpoint(renewalInfoUrl: string, id: string): string {
  return `${renewalInfoUrl.replace(/\/$/, '')}/${id}`;
}

export async function fetchRenewalInfo(
  transport: AcmeTransport,
  renewalInfoUrl: string,
  info: CertFacts,
  now: number,
  logger?: Logger,
): Promise<RenewalWindow | null> {
  const id = certId(info);
  if (!id) return null;
  const response = await transport.request(renewalInfoEndpoint(renewalInfoUrl, id), 'get');
  const body = response.data as
    | { suggestedWindow?: { start?: string; end?: string }; explanationURL?: unknown }
    | undefined;
  const start = Date.parse(body?.suggestedWindow?.start ?? '');
  const end = Date.parse(body?.suggestedWindow?.end ?? '');
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return null;
  const latest = latestRenewal(info);
  if (start >= latest) return null;
  // A window already open is the CA asking for renewal now (a revocation, a mass-revocation
  // drill): say why, in the CA's words, since nothing else will.
  if (start <= now) {
    logger?.warn('the CA asks for this certificate to be renewed now (ARI window already open)', {
      certId: id,
      window: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
      ...(typeof body?.explanationURL === 'string'
        ? { explanationURL: body.explanationURL.slice(0, 300) }
        : {}),
    });
  }
  const retryAfter = parseRetryAfter(response.headers['retry-after'], now) ?? 6 * 60 * MINUTE;
  return {
    start: new Date(start),
    end: new Date(Math.min(end, latest)),
    refreshAt: new Date(now + Math.min(Math.max(retryAfter, MINUTE), DAY)),
  };
}

/**
 * Problems that are about the names, the account's standing or our request as a whole: a plain
 * order meets them again, so they are not taken as a refusal of `replaces`.
 */
const NOT_ABOUT_REPLACES = new Set([
  'rejectedIdentifier',
  'unsupportedIdentifier',
  'caa',
  'invalidProfile',
  'badCSR',
  'externalAccountRequired',
  'userActionRequired',
  'accountDoesNotExist',
  'rateLimited',
  'badNonce',
]);

/**
 * Whether a newOrder that carried `replaces` was refused in a way a plain order may not be. CAs
 * word this differently (Boulder: 409 `alreadyReplaced` or `conflict`, 403 `unauthorized`
 * "requester account did not request the certificate being replaced", 400/404 `malformed` for an
 * unknown issuer key or serial), so any 4xx problem except those above counts. A wrong guess
 * costs one more newOrder, a missed refusal costs the certificate's renewal.
 */
export function refusesReplaces(error: unknown): error is CertkeeperError {
  if (!isCertkeeperError(error) || error.code !== 'ACME_PROBLEM') return false;
  const status = Number(error.details.status);
  if (!(status >= 400 && status < 500)) return false;
  return !NOT_ABOUT_REPLACES.has(shortType(String(error.details.type ?? '')));
}

/** How many certIDs each set keeps; a long-running process renews many certificates. */
const REMEMBERED = 4_096;

function remember(set: Set<string>, id: string): void {
  set.add(id);
  if (set.size > REMEMBERED) set.delete(set.values().next().value!);
}

/**
 * Which certificates may be named in `replaces`, for one CA. One owner of that knowledge per
 * issuer: certIDs this CA issued to us or answered a renewal window for (ours), and those it
 * refused or does not know (never sent again).
 */
export class Replacements {
  readonly #ours = new Set<string>();
  readonly #refused = new Set<string>();

  /** A certificate this CA issued, or one it answered a window for. */
  known(info: Pick<CertificateInfo, 'authorityKeyId' | 'serialNumber'>): void {
    const id = certId(info);
    if (id) remember(this.#ours, id);
  }

  refused(id: string): void {
    this.#ours.delete(id);
    remember(this.#refused, id);
  }

  /**
   * The certID to send as `replaces`, or undefined. A certificate not known to be this CA's (one
   * from another CA after an issuer change, or issued before a restart and not yet looked up) is
   * asked for at the renewalInfo endpoint first: only a CA that answers for it gets `replaces`.
   * Any failure of that question means a plain order, never a failed one.
   */
  async replaces(
    current: CertFacts,
    renewalInfoUrl: string,
    transport: AcmeTransport,
    logger: Logger,
  ): Promise<string | undefined> {
    const id = certId(current);
    if (!id || this.#refused.has(id)) return undefined;
    if (this.#ours.has(id)) return id;
    try {
      // Any answer at all (even a window we would not use) means the CA knows the certificate.
      await transport.request(renewalInfoEndpoint(renewalInfoUrl, id), 'get');
      remember(this.#ours, id);
      return id;
    } catch (error) {
      logger.debug(
        'the CA has no renewal information for the certificate being replaced; ordering without "replaces"',
        {
          certId: id,
          error: describeCause(error),
        },
      );
      // Only the CA saying it does not know it is remembered; a CA that did not answer is asked again.
      if (!isCertkeeperError(error) || error.code !== 'ACME_PROBLEM') return undefined;
    }
    remember(this.#refused, id);
    return undefined;
  }
}
