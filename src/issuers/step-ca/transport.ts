/**
 * HTTPS to a step-ca compatible CA. Every call trusts exactly one root (the pinned one), except
 * the bootstrap fetch of that root, which is made without verification and checked by hash
 * instead. Each request gets a fresh TLS session (`agent: false`): a pooled socket or a resumed
 * TLS 1.3 session would present the *previous* client certificate after a renewal, and
 * enrollment traffic is a handful of requests a day, so pooling buys nothing.
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
import https from 'node:https';
import type { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError, describeCause } from '../../errors.js';

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

const MAX_BODY = 1 << 20;
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

function unavailable(request: CaRequest, reason: string, cause?: unknown): CertkeeperError {
  return new CertkeeperError('ISSUER_UNAVAILABLE', `${where(request)}: CA unreachable (${reason})`, {
    ...(cause === undefined ? {} : { cause }),
    details: { url: request.url.origin },
  });
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
export function caRequest(request: CaRequest): Promise<CaAnswer> {
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  return new Promise<CaAnswer>((resolve, reject) => {
    const { signal } = request;
    if (signal?.aborted) {
      reject(unavailable(request, 'aborted', signal.reason));
      return;
    }
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    if (request.bearer) headers.Authorization = `Bearer ${request.bearer}`;
    const client = request.clientCertificate;
    const req = https.request(request.url, {
      method: request.method,
      headers,
      agent: false,
      ...(request.insecure ? { rejectUnauthorized: false } : { ca: request.ca, rejectUnauthorized: true }),
      ...(client ? { key: client.key.toPem(), cert: client.chainPem } : {}),
      signal,
      timeout: request.timeoutMs,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          req.destroy();
          reject(new CertkeeperError('ISSUER_FAILED', `${where(request)}: the CA's answer exceeds 1 MiB`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => reject(unavailable(request, describeCause(error), error)));
      // A connection cut mid-body: the answer is incomplete, whatever status line preceded it.
      res.on('aborted', () => reject(unavailable(request, 'connection closed mid-answer')));
      res.on('end', () => {
        if (res.readableAborted) return;
        try {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve(interpret(request, res.statusCode ?? 0, String(res.headers['content-type'] ?? ''), text));
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${request.timeoutMs} ms`)));
    req.on('error', (error) =>
      reject(
        signal?.aborted
          ? unavailable(request, 'aborted', signal.reason)
          : unavailable(request, describeCause(error), error),
      ),
    );
    req.end(body);
  });
}
