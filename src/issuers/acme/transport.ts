/**
 * The HTTP transport under acme-client. acme-client signs requests (JWS), keeps nonces and
 * retries `badNonce`; we replace only its `request` method, because its own transport is one
 * process-wide axios instance that
 *   - cannot trust a private ACME CA per issuer (Pebble, step-ca's ACME, an internal Boulder),
 *   - sleeps inside the request on 429/5xx (5 s × attempt, 5 attempts), holding an attempt open
 *     for minutes instead of letting the lifecycle back off while the old certificate is served,
 *   - turns every problem document into a flat message, losing the ACME problem type.
 * Here every error status (except `badNonce`, which acme-client retries with the nonce of the
 * error) becomes a typed CertkeeperError carrying the problem type, detail and Retry-After, and
 * each request honours the attempt's AbortSignal (carried by AsyncLocalStorage, since one
 * acme-client instance serves concurrent orders). The bytes travel through the one bounded HTTPS
 * client (`../../net/https-client.ts`: pinned roots, deadline, size cap), with kept-alive
 * connections: ACME requests carry no client certificate, and an order is many small requests.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CertkeeperError } from '../../errors.js';
import { HttpsClient } from '../../net/https-client.js';
import { problemError } from './problems.js';

export interface AcmeResponse {
  status: number;
  headers: Record<string, string | undefined>;
  data: unknown;
}

export interface TransportOptions {
  /** Extra roots (PEM) trusted for the CA's HTTPS endpoints, replacing the default bundle when set. */
  ca?: string | string[];
  /** Per-request deadline, connection to last byte (default 30 s). */
  timeoutMs?: number;
  /** Allow `http:` URLs (AcmeIssuer's `allowHttp`); otherwise a CA pointing at one is refused. */
  allowHttp?: boolean;
  userAgent?: string;
}

const signals = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` with every ACME request inside it bound to `signal`. */
export function withSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return signals.run(signal, fn);
}

const BAD_NONCE = 'urn:ietf:params:acme:error:badNonce';

/**
 * The longest wait a CA can ask for: 7 days, the longest rate-limit window of public CAs (Let's
 * Encrypt counts certificates per week). A CA asking for more is wrong or hostile; without a cap
 * `Retry-After: 315360000` scheduled the next attempt ten years out, and a larger one made an
 * invalid Date. The manager bounds it further by the certificate's remaining lifetime.
 */
export const MAX_RETRY_AFTER_MS = 7 * 24 * 3_600_000;

/** Parses a Retry-After header (delta seconds or HTTP date) into milliseconds, capped. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (Number.isNaN(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

export class AcmeTransport {
  /**
   * Nonces from Replay-Nonce headers of earlier responses. acme-client fetches a fresh one with
   * a HEAD before every signed request; reusing the ones the CA hands out anyway halves the round
   * trips of an order. A stale one costs a `badNonce`, which acme-client retries.
   */
  readonly #nonces: string[] = [];
  readonly #client: HttpsClient;
  readonly #userAgent: string;

  constructor(options: TransportOptions = {}) {
    this.#client = new HttpsClient({
      label: 'ACME server',
      // A certificate chain or a directory is kilobytes: the default 1 MiB cap holds.
      codes: { unavailable: 'ISSUER_UNAVAILABLE', invalid: 'ISSUER_FAILED' },
      ...(options.ca ? { ca: options.ca } : {}),
      keepAlive: true,
      allowHttp: options.allowHttp === true,
      timeoutMs: options.timeoutMs ?? 30_000,
    });
    this.#userAgent = options.userAgent ?? 'certkeeper acme-client/5';
  }

  close(): void {
    this.#client.close();
  }

  takeNonce(): string | undefined {
    return this.#nonces.pop();
  }

  /** acme-client's HttpClient.request contract: resolve with any status, reject on transport failure. */
  readonly request = async (
    url: string,
    method: string,
    opts: { data?: unknown; headers?: Record<string, string> } = {},
  ): Promise<AcmeResponse> => {
    const response = await this.#send(url, method.toUpperCase(), opts);
    const nonce = response.headers['replay-nonce'];
    if (nonce && method.toUpperCase() !== 'HEAD' && response.status < 400) {
      this.#nonces.push(nonce);
      if (this.#nonces.length > 32) this.#nonces.shift();
    }
    if (response.status >= 400) {
      const problem = response.data as { type?: string } | undefined;
      if (response.status === 400 && problem?.type === BAD_NONCE) return response;
      throw problemError(response, `${method.toUpperCase()} ${url}`);
    }
    return response;
  };

  async #send(
    url: string,
    method: string,
    opts: { data?: unknown; headers?: Record<string, string> },
  ): Promise<AcmeResponse> {
    const body =
      opts.data === undefined
        ? undefined
        : typeof opts.data === 'string'
          ? opts.data
          : JSON.stringify(opts.data);
    const signal = signals.getStore();
    const {
      status,
      headers,
      body: bytes,
    } = await this.#client.request({
      method,
      url,
      headers: {
        'User-Agent': this.#userAgent,
        Accept: 'application/json, application/pem-certificate-chain, */*',
        ...(opts.headers ?? {}),
        ...(body === undefined ? {} : { 'Content-Type': 'application/jose+json' }),
      },
      ...(body === undefined ? {} : { body }),
      ...(signal ? { signal } : {}),
    });
    const text = bytes.toString('utf8');
    const type = headers['content-type'] ?? '';
    let data: unknown = text;
    if (/json/i.test(type)) {
      try {
        data = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        throw new CertkeeperError(
          'ISSUER_FAILED',
          `${method} ${url}: the CA answered ${status} with invalid JSON`,
          { details: { status, url } },
        );
      }
    } else if (status < 400 && method !== 'HEAD' && /html/i.test(type)) {
      throw new CertkeeperError('ISSUER_FAILED', `${method} ${url}: the CA answered an HTML page, not ACME`, {
        details: { status, url },
      });
    }
    return { status, headers, data };
  }
}
