/**
 * ACME problem documents (RFC 8555 §6.7, RFC 7807) as typed errors. The code says what the
 * lifecycle should do; `details` keep the CA's own words for events and status:
 *   RATE_LIMITED        429 / rateLimited: wait `retryAfterMs`, never sooner
 *   ISSUER_UNAVAILABLE  5xx, serverInternal, unreachable: back off, keep the current certificate
 *   ACME_PROBLEM        anything else the CA refused (malformed, unauthorized, rejectedIdentifier…);
 *                       `retryable: false` for the problems a new order meets again
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
  /** A page for a person to act on (`userActionRequired`: new terms of service to agree to). */
  instance?: string;
  /** The terms of service the CA now requires (its `Link: rel="terms-of-service"`). */
  termsOfService?: string;
}

/** The short problem name (`rateLimited`) of a full type URN, for messages. */
export function shortType(type: string): string {
  return type.startsWith(ACME_ERROR) ? type.slice(ACME_ERROR.length) : type;
}

/**
 * Problems that a new order with the same names and account meets again (RFC 8555 §6.7 and the
 * profiles draft): the CA's policy or our configuration must change first, so they carry
 * `details.retryable: false` (see isRetryable). `accountDoesNotExist` is not among them: the
 * issuer registers again. Everything else (rate limits, server errors, `malformed`, which CAs
 * also use for races such as finalizing an order not ready yet) is worth a retry.
 */
const FINAL_PROBLEMS = new Set([
  'rejectedIdentifier',
  'unsupportedIdentifier',
  'caa',
  'unauthorized',
  'badCSR',
  'badPublicKey',
  'badSignatureAlgorithm',
  'invalidContact',
  'unsupportedContact',
  'externalAccountRequired',
  'userActionRequired',
  'badRevocationReason',
  'alreadyRevoked',
  'invalidProfile',
]);

/** Whether retrying can help with a problem of this type (a compound one: if any subproblem can). */
export function problemRetryable(type: unknown, subproblems: { type?: unknown }[] = []): boolean {
  const name = typeof type === 'string' ? shortType(type) : '';
  if (name === 'compound')
    return subproblems.length === 0 || subproblems.some((p) => problemRetryable(p.type));
  return !FINAL_PROBLEMS.has(name);
}

/**
 * A failed challenge is worth another order (the answer may be served next time, another solver
 * may be tried), unless the CA refused the name itself: its CAA records forbid this CA, or its
 * policy rejects the identifier.
 */
export function challengeRetryable(type: unknown): boolean {
  const name = typeof type === 'string' ? shortType(type) : '';
  return name !== 'caa' && name !== 'rejectedIdentifier' && name !== 'unsupportedIdentifier';
}

export function problemError(response: AcmeResponse, what: string): CertkeeperError {
  const body = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as {
    type?: unknown;
    detail?: unknown;
    subproblems?: AcmeProblemDetails['subproblems'];
    instance?: unknown;
  };
  const type = typeof body.type === 'string' ? body.type : 'about:blank';
  // Problem details come from the CA; cap them so a hostile server cannot flood logs.
  const detail = (typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`).slice(0, 500);
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  const instance = typeof body.instance === 'string' ? httpUrl(body.instance) : undefined;
  const termsOfService = linkTo(response.headers.link, 'terms-of-service');
  const details: AcmeProblemDetails = {
    type,
    detail,
    status: response.status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(Array.isArray(body.subproblems) ? { subproblems: body.subproblems.slice(0, 20) } : {}),
    ...(instance ? { instance } : {}),
    ...(termsOfService ? { termsOfService } : {}),
  };
  if (!problemRetryable(type, details.subproblems)) details.retryable = false;
  const name = shortType(type);
  const see = [instance, termsOfService].filter(Boolean).join(', ');
  const message = `${what}: ${name} (${response.status}): ${detail}${see ? ` (see ${see})` : ''}`;
  if (response.status === 429 || name === 'rateLimited') {
    return new CertkeeperError('RATE_LIMITED', message, { details });
  }
  if (response.status >= 500 || name === 'serverInternal') {
    return new CertkeeperError('ISSUER_UNAVAILABLE', message, { details });
  }
  return new CertkeeperError('ACME_PROBLEM', message, { details });
}

/** An http(s) URL the CA gave, capped; anything else is dropped. */
function httpUrl(text: string): string | undefined {
  return /^https?:\/\/\S+$/.test(text) ? text.slice(0, 300) : undefined;
}

/** The target of a `Link` header entry with this relation (RFC 8288), as the CA sent it. */
export function linkTo(header: string | undefined, rel: string): string | undefined {
  for (const entry of (header ?? '').split(/,\s*(?=<)/)) {
    const match = /^<([^>]*)>(.*)$/.exec(entry.trim());
    if (match && new RegExp(`;\\s*rel="?${rel}"?(\\s*;|\\s*$)`, 'i').test(match[2]!))
      return httpUrl(match[1]!);
  }
  return undefined;
}

export function isProblem(error: unknown, name: string): boolean {
  return (
    error instanceof CertkeeperError &&
    typeof error.details.type === 'string' &&
    shortType(error.details.type) === name
  );
}
