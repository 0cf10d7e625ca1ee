/**
 * The one HTTPS client certkeeper uses to talk to a CA or a trust endpoint (the ACME transport,
 * step-ca, URL trust sources). Every request is bounded:
 *
 * - trust: only the roots given (`ca` replaces Node's bundle), or Node's bundle when none are
 *   given; `unverified` only where the caller checks what it got another way (a pin on the
 *   presented chain through `checkPeer`, a hash of the answer).
 * - time: one deadline for the whole exchange, connection to last byte (`timeoutMs`), so a
 *   server trickling its answer a byte at a time cannot hold a caller longer than that; and the
 *   caller's AbortSignal.
 * - size: an answer larger than `maxBytes` (default 1 MiB) is refused as soon as it is.
 * - redirects are never followed: a 3xx is an answer like any other.
 *
 * Each request gets a fresh connection and TLS session unless `keepAlive` is set: a pooled
 * socket or a resumed session would present a previous client certificate after a renewal, and
 * a pin is then checked on every request, not only on the first.
 *
 * Failures are CertkeeperErrors with the caller's codes (`codes.unavailable` when no complete
 * answer arrived, `codes.invalid` for one too large or a plain `http:` URL) and `details.reason`. Messages name the
 * method, origin and path, never the query, a header or a body, and no key material: the client
 * key is handed to OpenSSL and nothing else.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, describeCause, type ErrorCode, optionError } from '../errors.js';

export const DEFAULT_MAX_BYTES = 1 << 20;
/** The longest deadline a timer holds (a larger one would fire at once). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const DEFAULT_TIMEOUT_MS = 30_000;

/** Why a request got no usable answer (`details.reason`). */
export type HttpsFailure =
  | 'unreachable'
  | 'tls'
  | 'timeout'
  | 'aborted'
  | 'truncated'
  | 'too-large'
  /** a plain `http:` URL without `allowHttp` */
  | 'insecure';

export interface HttpsClientOptions {
  /** Names the server in messages: "ACME server", "CA", "trust source roots". */
  label: string;
  /** Codes of failures: no complete answer / an answer or URL refused (too large, plain http:). */
  codes: { unavailable: ErrorCode; invalid: ErrorCode };
  /** More details on every error of this client (e.g. the trust source's name). */
  details?: Record<string, unknown>;
  /** Roots (PEM) the server's chain must verify against, replacing Node's bundle. */
  ca?: string | readonly string[];
  /** Accept any server chain: only with `checkPeer`, or an answer checked by other means. */
  unverified?: boolean;
  /**
   * Runs on each new connection after its handshake, before a byte of the request is written
   * (a pin check). An error returned refuses the connection and is the request's error.
   */
  checkPeer?: (socket: tls.TLSSocket, host: string) => CertkeeperError | null;
  /** Keep connections alive between requests (one pool per client). Default false. */
  keepAlive?: boolean;
  /** Allow `http:` URLs (a development CA on loopback). Default false. */
  allowHttp?: boolean;
  /** Deadline of one request, connection to last byte. Default 30 s. */
  timeoutMs?: number;
  /** Largest answer body accepted. Default 1 MiB. */
  maxBytes?: number;
}

export interface HttpsRequest {
  method: string;
  url: URL | string;
  headers?: Record<string, string | number>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** A client certificate (mTLS) for this request. */
  clientCertificate?: { key: PrivateKey; chainPem: string };
}

export interface HttpsResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string | undefined>;
  body: Buffer;
}

const TLS_FAILURE = /CERT|SIGNATURE|SELF_SIGNED|ALTNAME|ERR_SSL|ERR_TLS|ERR_OSSL|EPROTO|HANDSHAKE|VERIFY/i;

export class HttpsClient {
  readonly #o: HttpsClientOptions;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #agents: { https: https.Agent; http: http.Agent } | undefined;

  constructor(options: HttpsClientOptions) {
    this.#o = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(this.#timeoutMs > 0 && this.#timeoutMs <= MAX_TIMEOUT_MS))
      throw optionError('timeoutMs', `must be a number > 0 and <= ${MAX_TIMEOUT_MS}`, options.label);
    if (!(Number.isSafeInteger(this.#maxBytes) && this.#maxBytes > 0))
      throw optionError('maxBytes', 'must be a positive integer', options.label);
    if (options.keepAlive && options.checkPeer)
      throw optionError('checkPeer', 'needs a fresh connection per request (keepAlive off)', options.label);
    this.#agents = options.keepAlive
      ? {
          https: new https.Agent({ keepAlive: true, maxSockets: 16, ...this.#trust() }),
          http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
        }
      : undefined;
  }

  /** Closes the kept-alive connections, if any. Idempotent. */
  close(): void {
    this.#agents?.https.destroy();
    this.#agents?.http.destroy();
  }

  /**
   * One request; resolves with the answer whatever its status, rejects with a CertkeeperError
   * when no complete answer arrived in time or the answer is too large.
   */
  async request(request: HttpsRequest): Promise<HttpsResponse> {
    const url = new URL(request.url);
    const where = `${request.method} ${url.origin}${url.pathname}`;
    const fail = (reason: HttpsFailure, text: string, cause?: unknown) =>
      new CertkeeperError(
        reason === 'too-large' || reason === 'insecure' ? this.#o.codes.invalid : this.#o.codes.unavailable,
        `${this.#o.label} ${where}: ${text}`,
        {
          ...(cause === undefined ? {} : { cause }),
          details: { ...(this.#o.details ?? {}), url: url.origin, reason },
        },
      );
    // A URL handed over by the server itself (an ACME directory) may be plain http: refused.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.#o.allowHttp)) {
      throw fail('insecure', `refused: only https: is allowed (${url.protocol})`);
    }
    const { signal } = request;
    if (signal?.aborted) throw fail('aborted', 'aborted', signal.reason);
    // One controller ends every phase: the deadline or the caller's signal, whichever is first.
    const deadline = new AbortController();
    const onAbort = () => deadline.abort(fail('aborted', 'aborted', signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => deadline.abort(fail('timeout', `no complete answer within ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    try {
      return await this.#exchange(url, request, deadline.signal, fail);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  #trust(): tls.ConnectionOptions {
    if (this.#o.unverified) return { rejectUnauthorized: false };
    return { rejectUnauthorized: true, ...(this.#o.ca ? { ca: this.#o.ca as string | string[] } : {}) };
  }

  async #exchange(
    url: URL,
    request: HttpsRequest,
    deadline: AbortSignal,
    fail: (reason: HttpsFailure, text: string, cause?: unknown) => CertkeeperError,
  ): Promise<HttpsResponse> {
    const wrap = (error: unknown): CertkeeperError => {
      if (deadline.aborted) return deadline.reason as CertkeeperError;
      if (error instanceof CertkeeperError) return error;
      const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
      const kind = TLS_FAILURE.test(code) ? 'tls' : 'unreachable';
      return fail(kind, `${kind === 'tls' ? 'TLS failed' : 'unreachable'} (${describeCause(error)})`, error);
    };
    const plain = url.protocol === 'http:';
    let socket: tls.TLSSocket | undefined;
    if (!this.#agents && !plain) {
      socket = await this.#connect(url, request, deadline).catch((error: unknown) => {
        throw wrap(error);
      });
    }
    const body = request.body;
    return new Promise<HttpsResponse>((resolve, reject) => {
      let settled = false;
      const finish = (error: CertkeeperError | null, response?: HttpsResponse) => {
        if (settled) return;
        settled = true;
        deadline.removeEventListener('abort', stop);
        if (error) {
          reject(error);
          req.destroy();
        } else resolve(response!);
      };
      const headers: Record<string, string | number> = { ...(request.headers ?? {}) };
      if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
      const options: http.RequestOptions = {
        method: request.method,
        headers,
        ...(socket
          ? // The request runs on the socket that passed the checks: no agent (an agent, even
            // `agent: false`, would open a connection of its own).
            { createConnection: () => socket }
          : plain
            ? { agent: this.#agents?.http ?? false }
            : { agent: this.#agents!.https, ...clientTls(request) }),
      };
      let req: http.ClientRequest;
      try {
        req = (plain ? http : https).request(url, options);
      } catch (error) {
        // A header Node refuses, a client key OpenSSL cannot load (pooled connections).
        reject(wrap(error));
        return;
      }
      const stop = () => finish(deadline.reason as CertkeeperError);
      deadline.addEventListener('abort', stop, { once: true });
      if (deadline.aborted) stop();
      req.on('error', (error) => finish(wrap(error)));
      req.on('response', (res) => {
        const declared = Number(res.headers['content-length']);
        if (declared > this.#maxBytes) {
          finish(fail('too-large', `the answer exceeds ${this.#maxBytes} bytes (${declared} announced)`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxBytes) finish(fail('too-large', `the answer exceeds ${this.#maxBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (error) =>
          finish(
            deadline.aborted ? wrap(error) : fail('truncated', 'the connection closed mid-answer', error),
          ),
        );
        res.on('end', () => {
          const headers: Record<string, string | undefined> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            headers[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          finish(null, { status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
        // A connection cut mid-body: whatever status line preceded it, the answer is incomplete.
        res.on('close', () => finish(fail('truncated', 'the connection closed mid-answer')));
      });
      req.end(body);
    });
  }

  /** A TLS connection that passed verification and `checkPeer`, bound to `deadline`. */
  #connect(url: URL, request: HttpsRequest, deadline: AbortSignal): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const socket = tls.connect({
        host,
        port: Number(url.port || 443),
        servername: isIP(host) ? undefined : host,
        ALPNProtocols: ['http/1.1'],
        ...this.#trust(),
        ...clientTls(request),
      });
      const stop = () => socket.destroy();
      deadline.addEventListener('abort', stop, { once: true });
      socket.once('error', (error) => {
        deadline.removeEventListener('abort', stop);
        reject(error);
      });
      socket.once('close', () => reject(deadline.reason ?? new Error('connection closed')));
      socket.once('secureConnect', () => {
        deadline.removeEventListener('abort', stop);
        const refused = this.#o.checkPeer?.(socket, host) ?? null;
        if (refused) {
          socket.destroy();
          reject(refused);
        } else resolve(socket);
      });
    });
  }
}

function clientTls(request: HttpsRequest): tls.ConnectionOptions {
  const client = request.clientCertificate;
  return client ? { key: client.key.toPem(), cert: client.chainPem } : {};
}
