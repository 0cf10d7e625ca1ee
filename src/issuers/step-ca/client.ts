/**
 * The step-ca HTTP API, one method per endpoint, over the pinned root only.
 * It knows the wire format and nothing of the lifecycle: which call to make when, and what a
 * refusal means for the service, is `StepCaIssuer`'s business.
 */
import { parseCertificates } from '../../crypto/inspect.js';
import type { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError } from '../../errors.js';
import type { RevocationReason } from '../issuer.js';
import { REVOCATION_REASON_CODES } from '../revocation.js';
import { type CaAnswer, caRequest } from './transport.js';

export interface StepCaClientOptions {
  caUrl: URL;
  /** The pinned root (PEM): the only certificate trusted for the CA's TLS. */
  root: string;
  timeoutMs: number;
}

export interface ClientCertificate {
  key: PrivateKey;
  chainPem: string;
}

export class StepCaClient {
  readonly #o: StepCaClientOptions;

  constructor(options: StepCaClientOptions) {
    this.#o = options;
  }

  #url(path: string): URL {
    return new URL(path, this.#o.caUrl.href.replace(/\/?$/, '/'));
  }

  #call(
    method: 'GET' | 'POST',
    path: string,
    extra: {
      body?: unknown;
      bearer?: string;
      client?: ClientCertificate;
      signal?: AbortSignal;
      secrets?: string[];
    } = {},
  ): Promise<CaAnswer> {
    return caRequest({
      method,
      url: this.#url(path),
      body: extra.body,
      bearer: extra.bearer,
      ca: this.#o.root,
      clientCertificate: extra.client,
      timeoutMs: this.#o.timeoutMs,
      signal: extra.signal,
      secrets: extra.secrets,
    });
  }

  /** `POST /1.0/sign`: enroll with a one-time token. */
  async sign(
    csrPem: string,
    ott: string,
    options: { notAfter?: string; signal?: AbortSignal } = {},
  ): Promise<string> {
    const body: Record<string, unknown> = { csr: csrPem, ott };
    if (options.notAfter) body.notAfter = options.notAfter;
    const answer = await this.#call('POST', '1.0/sign', { body, signal: options.signal, secrets: [ott] });
    return chainOf(answer, 'POST /1.0/sign');
  }

  /** `POST /1.0/renew` over mTLS with the current certificate. */
  async renew(client: ClientCertificate, signal?: AbortSignal): Promise<string> {
    return chainOf(await this.#call('POST', '1.0/renew', { client, signal }), 'POST /1.0/renew');
  }

  /** `POST /1.0/renew` with `Authorization: Bearer <x5c token>` (expired certificates). */
  async renewWithToken(token: string, signal?: AbortSignal): Promise<string> {
    const answer = await this.#call('POST', '1.0/renew', { bearer: token, signal, secrets: [token] });
    return chainOf(answer, 'POST /1.0/renew');
  }

  /** `POST /1.0/rekey {csr}` over mTLS: the same certificate for a new key. */
  async rekey(client: ClientCertificate, csrPem: string, signal?: AbortSignal): Promise<string> {
    return chainOf(
      await this.#call('POST', '1.0/rekey', { body: { csr: csrPem }, client, signal }),
      'POST /1.0/rekey',
    );
  }

  /**
   * `POST /1.0/revoke`, passive (step-ca implements no other kind): the CA refuses to renew the
   * certificate from then on. Authenticated by the certificate itself (mTLS) or by a token.
   */
  async revoke(options: {
    serialHex: string;
    reason: RevocationReason;
    client?: ClientCertificate;
    ott?: string;
    signal?: AbortSignal;
  }): Promise<void> {
    const body = {
      // step-ca compares the serial with the client certificate's in decimal.
      serial: BigInt(`0x${options.serialHex}`).toString(10),
      reasonCode: REVOCATION_REASON_CODES[options.reason],
      reason: options.reason,
      passive: true,
      ...(options.ott ? { ott: options.ott } : {}),
    };
    await this.#call('POST', '1.0/revoke', {
      body,
      client: options.client,
      signal: options.signal,
      secrets: options.ott ? [options.ott] : [],
    });
  }

  /** `GET /health`. */
  async health(signal?: AbortSignal): Promise<boolean> {
    const { data } = await this.#call('GET', 'health', { signal });
    return (data as { status?: unknown }).status === 'ok';
  }

  /** `GET /roots`: every root the CA trusts (PEM). */
  async roots(signal?: AbortSignal): Promise<string[]> {
    const { data } = await this.#call('GET', 'roots', { signal });
    const crts = (data as { crts?: unknown }).crts;
    if (!Array.isArray(crts) || !crts.every((c) => typeof c === 'string'))
      throw new CertkeeperError('ISSUER_FAILED', 'GET /roots: the answer has no "crts" list');
    return crts as string[];
  }
}

/**
 * The chain of a 201 answer: `certChain` (leaf first, intermediates, no root), or `crt` + `ca`
 * from CAs older than `certChain`. Each entry must parse as a certificate, so a garbled answer is
 * refused here, as the CA's fault, before the manager sees it.
 */
function chainOf(answer: CaAnswer, what: string): string {
  const data = answer.data as { certChain?: unknown; crt?: unknown; ca?: unknown };
  const list = Array.isArray(data.certChain)
    ? data.certChain
    : typeof data.crt === 'string'
      ? [data.crt, ...(typeof data.ca === 'string' ? [data.ca] : [])]
      : [];
  if (list.length === 0 || !list.every((c) => typeof c === 'string')) {
    throw new CertkeeperError('ISSUER_FAILED', `${what}: the CA's answer has no certificate chain`, {
      details: { status: answer.status },
    });
  }
  try {
    return (list as string[])
      .flatMap((pem) => parseCertificates(pem, what))
      .map((c) => c.pem)
      .join('');
  } catch (error) {
    throw new CertkeeperError('ISSUER_FAILED', `${what}: the CA's certificate chain does not parse`, {
      cause: error,
      details: { status: answer.status },
    });
  }
}
