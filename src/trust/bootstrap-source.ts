/**
 * Trust anchors from a step-ca compatible CA, bootstrapped by fingerprint (docs/platform.md#step-ca): the
 * root is fetched from `GET {ca}/root/{fingerprint}` without TLS verification and accepted only if
 * the SHA-256 of its DER equals the configured fingerprint. It reuses the step-ca issuer's
 * bootstrap (`fetchRoot`), so both agree on fingerprint forms and error codes: a substituted root
 * is ROOT_FINGERPRINT_MISMATCH, never trusted.
 *
 * The fingerprint names one root, so the answer can never change; `refresh()` re-fetches (and
 * re-checks) only to notice the CA going away, which keeps the last good root anyway.
 */
import { optionError } from '../errors.js';
import { fetchRoot, normalizeFingerprint } from '../issuers/step-ca/bootstrap.js';
import { MAX_TIMEOUT_MS } from '../net/https-client.js';
import type { TrustSource } from './source.js';

export interface BootstrapTrustSourceOptions {
  /** The CA's base URL (`https://ca.internal:9000`). */
  caUrl: string | URL;
  /** SHA-256 of the root's DER (`step certificate fingerprint root_ca.crt`). */
  fingerprint: string;
  name?: string;
  /** Default 10 s. */
  timeoutMs?: number;
}

export class BootstrapTrustSource implements TrustSource {
  readonly name: string;
  readonly #caUrl: URL;
  readonly #fingerprint: string;
  readonly #timeoutMs: number;

  constructor(options: BootstrapTrustSourceOptions) {
    const url = new URL(options.caUrl);
    if (url.protocol !== 'https:') {
      throw optionError('caUrl', 'must be https:', 'BootstrapTrustSource');
    }
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    const fingerprint = normalizeFingerprint(options.fingerprint);
    if (!fingerprint) {
      throw optionError(
        'fingerprint',
        'must be a SHA-256 fingerprint (64 hex digits)',
        'BootstrapTrustSource',
      );
    }
    this.#caUrl = url;
    this.#fingerprint = fingerprint;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (!(this.#timeoutMs > 0 && this.#timeoutMs <= MAX_TIMEOUT_MS))
      throw optionError('timeoutMs', `must be a number > 0 and <= ${MAX_TIMEOUT_MS}`, 'BootstrapTrustSource');
    this.name = options.name ?? `bootstrap:${url.host}`;
  }

  async load(signal: AbortSignal): Promise<string[]> {
    return [
      await fetchRoot({
        caUrl: this.#caUrl,
        fingerprint: this.#fingerprint,
        timeoutMs: this.#timeoutMs,
        signal,
      }),
    ];
  }
}
