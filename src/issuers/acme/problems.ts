/**
 * ACME problem documents (RFC 8555 §6.7, RFC 7807) as typed errors. The code says what the
 * lifecycle should do; `details` keep the CA's own words for events and status:
 *   RATE_LIMITED        429 / rateLimited: wait `retryAfterMs`, never sooner
 *   ISSUER_UNAVAILABLE  5xx, serverInternal, unreachable: back off, keep the current certificate
 *   ACME_PROBLEM        anything else the CA refused (malformed, unauthorized, rejectedIdentifier…)
 */
import { CertkeeperError } from '../../errors.js';
import type { AcmeResponse } from './transport.js';
import { parseRetryAfter } from './transport.js';

export const ACME_ERROR = 'urn:ietf:params:acme:error:';

export interface AcmeProblemDetails {
  [key: string]: unknown;
  type: string;
  detail: string;
  status: number;
  retryAfterMs?: number;
  subproblems?: { type?: string; detail?: string; identifier?: unknown }[];
  url?: string;
}

/** The short problem name (`rateLimited`) of a full type URN, for messages. */
export function shortType(type: string): string {
  return type.startsWith(ACME_ERROR) ? type.slice(ACME_ERROR.length) : type;
}

export function problemError(response: AcmeResponse, what: string): CertkeeperError {
  const body = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as {
    type?: unknown;
    detail?: unknown;
    subproblems?: AcmeProblemDetails['subproblems'];
  };
  const type = typeof body.type === 'string' ? body.type : 'about:blank';
  // Problem details come from the CA; cap them so a hostile server cannot flood logs.
  const detail = (typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`).slice(0, 500);
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  const details: AcmeProblemDetails = {
    type,
    detail,
    status: response.status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(Array.isArray(body.subproblems) ? { subproblems: body.subproblems.slice(0, 20) } : {}),
  };
  const name = shortType(type);
  const message = `${what}: ${name} (${response.status}): ${detail}`;
  if (response.status === 429 || name === 'rateLimited') {
    return new CertkeeperError('RATE_LIMITED', message, { details });
  }
  if (response.status >= 500 || name === 'serverInternal') {
    return new CertkeeperError('ISSUER_UNAVAILABLE', message, { details });
  }
  return new CertkeeperError('ACME_PROBLEM', message, { details });
}

export function isProblem(error: unknown, name: string): boolean {
  return (
    error instanceof CertkeeperError &&
    typeof error.details.type === 'string' &&
    shortType(error.details.type) === name
  );
}
