/**
 * HTTPS to a step-ca compatible CA, through the one bounded HTTPS client
 * (`../../net/https-client.ts`). Every call trusts exactly one root (the pinned one), except the
 * bootstrap fetch of that root, which is made without verification and checked by hash instead.
 * Each request gets a fresh connection and TLS session: a pooled socket or a resumed TLS 1.3
 * session would present the *previous* client certificate after a renewal, and enrollment
 * traffic is a handful of requests a day, so pooling buys nothing.
 *
 * Answers become typed errors here, in one place:
 *   network failure, timeout, abort, 5xx   ISSUER_UNAVAILABLE   (retry later, keep serving)
 *   401                                    TOKEN_REJECTED       (callers refine: replay, renewal refused)
 *   400, 403, 404, other 4xx               CA_REFUSED           (the CA said no: config or policy;
 *                                                               400/403 in step-ca's shape: retryable false)
 *   2xx that is not the JSON it should be  ISSUER_FAILED        (garbage, HTML, truncated)
 * The CA's own message is kept (capped, scrubbed, with any secret we sent cut out) because
 * step-ca's messages are the operator's best clue; it is never trusted for anything else.
 */
import type { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError } from '../../errors.js';
import { HttpsClient } from '../../net/https-client.js';

export interface CaRequest {
  method: 'GET' | 'POST';
  url: URL;
  body?: unknown;
  /** `Authorization: Bearer` value (the x5c renewal token). */
  bearer?: string;
  /** The one root (PEM) trusted for the CA's TLS certificate. */
  ca?: string;
  /** Bootstrap only: accept any server certificate (the answer is checked by hash instead). */
  insecure?: boolean;
  /** Client certificate for mTLS (`/renew`, `/rekey`, `/revoke`). */
  clientCertificate?: { key: PrivateKey; chainPem: string };
  timeoutMs: number;
  signal?: AbortSignal;
  /** Strings that must never appear in an error message (tokens sent in this request). */
  secrets?: string[];
}

export interface CaAnswer {
  status: number;
  data: unknown;
}

const MAX_MESSAGE = 300;

function where(request: CaRequest): string {
  return `${request.method} ${request.url.origin}${request.url.pathname}`;
}

/** A CA-supplied message made safe to put in an error: capped, secrets removed. */
export function caMessage(value: unknown, secrets: readonly string[] = []): string {
  let text = typeof value === 'string' ? value : '';
  for (const secret of secrets) if (secret) text = text.split(secret).join('[token]');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters would forge log lines
  text = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/** The typed error for a CA answer with an error status. */
function answerError(request: CaRequest, status: number, data: unknown): CertkeeperError {
  const body = (typeof data === 'object' && data !== null ? data : {}) as { message?: unknown };
  const message = caMessage(body.message, request.secrets) || `HTTP ${status}`;
  // `fromCa`: the body had step-ca's error shape, so the CA itself answered (not a proxy page).
  const fromCa = typeof (body as { status?: unknown }).status === 'number';
  // The CA itself refusing a request (400 bad request, 403 forbidden by policy) refuses the same
  // request again; a proxy's page or any other status may be passing.
  const final = fromCa && (status === 400 || status === 403);
  const details = {
    status,
    caMessage: message,
    fromCa,
    url: request.url.origin,
    ...(final ? { retryable: false } : {}),
  };
  const text = `${where(request)}: the CA answered ${status}: ${message}`;
  if (status >= 500) return new CertkeeperError('ISSUER_UNAVAILABLE', text, { details });
  if (status === 401) return new CertkeeperError('TOKEN_REJECTED', text, { details });
  return new CertkeeperError('CA_REFUSED', text, { details });
}

function interpret(request: CaRequest, status: number, contentType: string, text: string): CaAnswer {
  let data: unknown;
  let parsed = false;
  try {
    data = JSON.parse(text);
    parsed = typeof data === 'object' && data !== null;
  } catch {
    // judged below: an error status without JSON is still that error status
  }
  if (status >= 400) throw answerError(request, status, parsed ? data : {});
  if (!parsed) {
    const what =
      /html/i.test(contentType) || /^\s*</.test(text) ? 'an HTML page' : 'invalid or truncated JSON';
    throw new CertkeeperError('ISSUER_FAILED', `${where(request)}: the CA answered ${status} with ${what}`, {
      details: { status, url: request.url.origin },
    });
  }
  return { status, data };
}

/** One request; resolves with a 2xx JSON answer, rejects with a typed CertkeeperError. */
export async function caRequest(request: CaRequest): Promise<CaAnswer> {
  const client = new HttpsClient({
    label: 'CA',
    codes: { unavailable: 'ISSUER_UNAVAILABLE', invalid: 'ISSUER_FAILED' },
    ...(request.insecure ? { unverified: true } : { ca: request.ca }),
    timeoutMs: request.timeoutMs,
  });
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (request.bearer) headers.Authorization = `Bearer ${request.bearer}`;
  const answer = await client.request({
    method: request.method,
    url: request.url,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(request.signal ? { signal: request.signal } : {}),
    ...(request.clientCertificate ? { clientCertificate: request.clientCertificate } : {}),
  });
  return interpret(
    request,
    answer.status,
    answer.headers['content-type'] ?? '',
    answer.body.toString('utf8'),
  );
}
