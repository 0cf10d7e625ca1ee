/**
 * Asks the CRLs named in a certificate whether it is revoked: fetched over HTTP(S) with a bounded
 * size and time, checked (crl.ts), and kept until their nextUpdate so a certificate is not asked
 * about on every pass. One fetch per URL at a time, however many certificates share it.
 *
 * A CRL is kept only once it has been checked against the issuer it was fetched for: a CRL that
 * fails its check is never cached, and a fetch that fails leaves the last genuine one in place.
 * Plain `http:` is allowed on purpose — CRLs are signed, and CAs publish them over HTTP (an HTTPS
 * fetch of a CRL could itself need a revocation check).
 */
import { type Clock, systemClock } from '../clock.js';
import { isSignedBy, type ParsedCertificate } from '../crypto/inspect.js';
import type { x509 } from '../crypto/x509.js';
import { CertkeeperError, describeCause, isCertkeeperError } from '../errors.js';
import { HttpsClient } from '../net/https-client.js';
import {
  authenticateCrl,
  type CheckCrlOptions,
  type CheckedCrl,
  type CrlVerdict,
  crlUrls,
  parseCrl,
  verdictOf,
} from './crl.js';

export interface RevocationCheckerOptions extends CheckCrlOptions {
  clock?: Clock;
  /** Deadline of one CRL fetch. Default 15 s. */
  timeoutMs?: number;
  /** Largest CRL accepted. Default 16 MiB (Let's Encrypt shards its CRLs far below that). */
  maxBytes?: number;
  /** A checked CRL is asked again after its nextUpdate, but no sooner than this. Default 5 min. */
  minRefreshMs?: number;
  /** ... and no later than this, whatever its nextUpdate says. Default 24 h. */
  maxRefreshMs?: number;
}

/** What a check found, and when it is worth asking again. */
export type RevocationResult = CrlVerdict & { url: string; checkAgainAt: number };

interface Kept {
  checked: CheckedCrl;
  until: number;
}

export class RevocationChecker {
  readonly #clock: Clock;
  readonly #client: HttpsClient;
  readonly #o: RevocationCheckerOptions;
  /** Checked CRLs by URL and issuer key. */
  readonly #kept = new Map<string, Kept>();
  readonly #inFlight = new Map<string, Promise<x509.X509Crl>>();
  readonly #signedBy = new WeakMap<ParsedCertificate, string>();
  readonly #urls = new WeakMap<ParsedCertificate, string[]>();

  constructor(options: RevocationCheckerOptions = {}) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#client = new HttpsClient({
      label: 'CRL distribution point',
      codes: { unavailable: 'CRL_UNAVAILABLE', invalid: 'CRL_UNAVAILABLE' },
      allowHttp: true,
      timeoutMs: options.timeoutMs ?? 15_000,
      maxBytes: options.maxBytes ?? 16 << 20,
    });
  }

  /**
   * What the CRLs of `certificate` say, or null when it names no http(s) CRL. Tries each
   * distribution point in order until one gives a verdict; throws the last failure otherwise
   * (CRL_UNAVAILABLE, CRL_INVALID).
   */
  async check(
    certificate: ParsedCertificate,
    issuer: ParsedCertificate,
    signal?: AbortSignal,
  ): Promise<RevocationResult | null> {
    let urls = this.#urls.get(certificate);
    if (!urls) {
      urls = crlUrls(certificate);
      this.#urls.set(certificate, urls);
    }
    if (urls.length === 0) return null;
    // Checked once per certificate and issuer: a pass over many certificates costs lookups.
    if (this.#signedBy.get(certificate) !== issuer.info.fingerprint256) {
      if (!isSignedBy(certificate, issuer))
        throw new CertkeeperError('CRL_INVALID', 'the issuer given did not sign the certificate');
      this.#signedBy.set(certificate, issuer.info.fingerprint256);
    }
    let failure: CertkeeperError | undefined;
    for (const url of urls) {
      const key = `${issuer.info.fingerprint256} ${url}`;
      const now = this.#clock.now();
      let kept = this.#kept.get(key);
      let checkAgainAt = kept?.until ?? 0;
      if (!kept || kept.until <= now) {
        try {
          const crl = await this.#fetch(url, signal);
          // Checked before it is kept: a CRL that is not the issuer's never replaces one that is.
          kept = {
            checked: await authenticateCrl(crl, issuer, now, this.#o),
            until: this.#refreshAt(crl, now),
          };
          this.#kept.set(key, kept);
          checkAgainAt = kept.until;
        } catch (error) {
          failure = asCrlError(error, url);
          if (!kept) continue;
          // The last genuine CRL answers meanwhile (stale: it can still say "revoked").
          checkAgainAt = now + this.#minRefreshMs;
        }
      }
      return { ...verdictOf(kept.checked, certificate, this.#clock.now()), url, checkAgainAt };
    }
    throw failure;
  }

  close(): void {
    this.#client.close();
  }

  get #minRefreshMs(): number {
    return this.#o.minRefreshMs ?? 300_000;
  }

  #refreshAt(crl: x509.X509Crl, now: number): number {
    const min = now + this.#minRefreshMs;
    const max = now + (this.#o.maxRefreshMs ?? 86_400_000);
    const next = crl.nextUpdate?.getTime() ?? max;
    return Math.min(Math.max(next, min), max);
  }

  #fetch(url: string, signal?: AbortSignal): Promise<x509.X509Crl> {
    let pending = this.#inFlight.get(url);
    if (!pending) {
      pending = this.#client
        .request({ method: 'GET', url, signal, headers: { accept: 'application/pkix-crl' } })
        .then((response) => {
          if (response.status !== 200)
            throw new CertkeeperError('CRL_UNAVAILABLE', `CRL ${url}: HTTP ${response.status}`, {
              details: { url, status: response.status },
            });
          return parseCrl(response.body);
        })
        .finally(() => this.#inFlight.delete(url));
      this.#inFlight.set(url, pending);
    }
    return pending;
  }
}

function asCrlError(error: unknown, url: string): CertkeeperError {
  if (isCertkeeperError(error)) {
    if (error.code === 'CRL_INVALID' && !error.message.includes(url))
      return new CertkeeperError('CRL_INVALID', `CRL ${url}: ${error.message}`, {
        cause: error,
        details: { ...error.details, url },
      });
    return error;
  }
  return new CertkeeperError('CRL_UNAVAILABLE', `CRL ${url}: ${describeCause(error)}`, {
    cause: error,
    details: { url },
  });
}
