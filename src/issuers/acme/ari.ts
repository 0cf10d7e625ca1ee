/**
 * ACME Renewal Information (RFC 9773): the CA suggests when to renew each certificate. The
 * certificate's identity (certID) is base64url(AKI keyIdentifier) "." base64url(serial DER
 * content bytes); the window is fetched unauthenticated and re-fetched after Retry-After,
 * clamped to [1 minute, 1 day]. A window that ends before it starts is ignored.
 *
 * The window is the CA's to choose, but not past the certificate's usefulness: renewal must
 * leave time for retries before notAfter. A window is cut at the last tenth of the lifetime
 * (`latestRenewal`); one that starts after that point is ignored (the lifetime rule applies).
 */
import type { CertificateInfo } from '../../crypto/inspect.js';
import type { RenewalWindow } from '../issuer.js';
import type { AcmeTransport } from './transport.js';
import { parseRetryAfter } from './transport.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

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

export async function fetchRenewalInfo(
  transport: AcmeTransport,
  renewalInfoUrl: string,
  info: Pick<CertificateInfo, 'authorityKeyId' | 'serialNumber' | 'notBefore' | 'notAfter'>,
  now: number,
): Promise<RenewalWindow | null> {
  const id = certId(info);
  if (!id) return null;
  const response = await transport.request(`${renewalInfoUrl.replace(/\/$/, '')}/${id}`, 'get');
  const body = response.data as { suggestedWindow?: { start?: string; end?: string } } | undefined;
  const start = Date.parse(body?.suggestedWindow?.start ?? '');
  const end = Date.parse(body?.suggestedWindow?.end ?? '');
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) return null;
  const latest = latestRenewal(info);
  if (start >= latest) return null;
  const retryAfter = parseRetryAfter(response.headers['retry-after'], now) ?? 6 * 60 * MINUTE;
  return {
    start: new Date(start),
    end: new Date(Math.min(end, latest)),
    refreshAt: new Date(now + Math.min(Math.max(retryAfter, MINUTE), DAY)),
  };
}
