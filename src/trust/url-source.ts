/**
 * Trust anchors fetched from a URL (a CA's `/roots.pem`, an internal bundle endpoint), over a
 * connection pinned one of two ways:
 *
 * - `ca`: the server's chain must verify against exactly this root (PEM), host name included.
 *   Node's bundled public roots are not consulted (`ca` replaces them).
 * - `pins`: SHA-256 fingerprints (of the DER) of certificates the server presents, its leaf or a
 *   CA it sends. A leaf pin is the whole check, as with SSH host keys; a CA pin holds only when
 *   the path from the leaf up to it is one a TLS client would accept with the pinned certificate
 *   as its trust anchor (signatures, every issuer a CA allowed to sign, pathLen, serverAuth
 *   along the path, every certificate within its validity, notBefore forgiven by `skewMs`) and
 *   the leaf names the host. Node only runs `checkServerIdentity` after a successful chain
 *   verification, so the check is made on the connected socket instead, before a single byte
 *   of the request is written.
 *
 * With both, both must hold. Plain `http:` is refused: a trust bundle fetched in clear is whatever
 * anyone on the path wants it to be. Each fetch is a fresh connection (no agent, no resumption),
 * so a pin is checked on every fetch, not only on the first. The fetch is the one bounded HTTPS
 * client's (`../net/https-client.ts`): one deadline for the whole fetch, a 1 MiB cap.
 */
import tls from 'node:tls';
import { type Clock, systemClock } from '../clock.js';
import { parseCertificateDer } from '../crypto/inspect.js';
import { checkIssuers, checkLinks, checkPurpose, checkValidity, type PathOptions } from '../crypto/path.js';
import { DEFAULT_SKEW_MS } from '../crypto/validate.js';
import { CertkeeperError, describeCause, optionError } from '../errors.js';
import { normalizeFingerprint } from '../issuers/step-ca/bootstrap.js';
import { HttpsClient, MAX_TIMEOUT_MS } from '../net/https-client.js';
import { every } from './poll.js';
import type { TrustSource } from './source.js';

/** Options of `UrlTrustSource`. */
export interface UrlTrustSourceOptions {
  url: string | URL;
  name?: string;
  /** Root (PEM) the server's chain must verify against. */
  ca?: string;
  /** SHA-256 fingerprints (hex, any of `AB:CD`, `ab-cd`, `abcd` forms) of a presented certificate. */
  pins?: string[];
  /** Deadline of one fetch, connection to last byte. Default 10 s. */
  timeoutMs?: number;
  /**
   * Tolerated clock difference with the CA for the notBefore of the certificates a CA pin
   * checks, in ms. Default 60 000 (as `validateBundle`). Expiry is never forgiven.
   */
  skewMs?: number;
  /** Re-fetch interval for `watch`; 0 (default) means only on `refresh()`. */
  refreshIntervalMs?: number;
  /** The time pinned chains are checked at and the re-fetch interval runs on. Default: the system clock. */
  clock?: Clock;
}

const invalid = (option: string, problem: string) => optionError(option, problem, 'UrlTrustSource');

export class UrlTrustSource implements TrustSource {
  readonly name: string;
  readonly url: URL;
  readonly #client: HttpsClient;
  readonly #intervalMs: number;
  readonly #clock: Clock;

  constructor(options: UrlTrustSourceOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'https:') throw invalid('url', 'must be https:');
    if (!options.ca && !options.pins?.length)
      throw invalid('ca', 'or pins is required (ca/pins: one of them at least)');
    let pins: ReadonlySet<string> | undefined;
    if (options.pins) {
      const normalized = options.pins.map((p) => normalizeFingerprint(p));
      if (normalized.some((p) => p === null))
        throw invalid('pins', 'must be SHA-256 fingerprints (64 hex digits)');
      pins = new Set(normalized as string[]);
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    const skewMs = options.skewMs ?? DEFAULT_SKEW_MS;
    this.#intervalMs = options.refreshIntervalMs ?? 0;
    this.#clock = options.clock ?? systemClock;
    if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS))
      throw invalid('timeoutMs', `must be a number > 0 and <= ${MAX_TIMEOUT_MS}`);
    if (!(skewMs >= 0 && Number.isFinite(skewMs))) throw invalid('skewMs', 'must be a finite number >= 0');
    if (!(this.#intervalMs >= 0)) throw invalid('refreshIntervalMs', 'must be >= 0');
    this.name = options.name ?? `url:${this.url.host}${this.url.pathname}`;
    this.#client = new HttpsClient({
      label: `trust source ${this.name}`,
      codes: { unavailable: 'TRUST_SOURCE_FAILED', invalid: 'TRUST_SOURCE_FAILED' },
      details: { source: this.name },
      ...(options.ca ? { ca: options.ca } : { unverified: true }),
      ...(pins
        ? {
            checkPeer: (socket: tls.TLSSocket, host: string) => {
              const problem = pinProblem(
                socket.getPeerCertificate(true),
                pins,
                host,
                skewMs,
                this.#clock.now(),
              );
              return problem ? this.#fail(problem, 'TRUST_PIN_MISMATCH') : null;
            },
          }
        : {}),
      timeoutMs,
    });
  }

  async load(signal: AbortSignal): Promise<string[]> {
    const answer = await this.#client.request({
      method: 'GET',
      url: this.url,
      headers: { Accept: 'application/x-pem-file, text/plain' },
      signal,
    });
    if (answer.status !== 200) throw this.#fail(`GET ${this.url.pathname} answered ${answer.status}`);
    return [answer.body.toString('utf8')];
  }

  watch(onChange: () => void): () => void {
    if (this.#intervalMs === 0) return () => {};
    return every(this.#clock, this.#intervalMs, onChange);
  }

  #fail(message: string, code: 'TRUST_SOURCE_FAILED' | 'TRUST_PIN_MISMATCH' = 'TRUST_SOURCE_FAILED') {
    return new CertkeeperError(code, `trust source ${this.name}: ${message}`, {
      details: { source: this.name, url: this.url.origin },
    });
  }
}

/**
 * Why the presented chain does not satisfy the pins, or null. The leaf matches by itself. A CA
 * matches only when the path from the leaf up to it holds as a TLS client with that CA as its
 * only trust anchor would check it: every link a real signature (Node links the chain a server
 * sends by names, and a man in the middle can append the public pinned CA to a leaf of its own
 * naming that CA as issuer), every issuer a CA allowed to issue (an end-entity certificate of
 * the pinned CA signs nothing), path lengths, serverAuth, and validity, the pinned certificate's
 * own included; then the leaf must be valid for the host.
 */
function pinProblem(
  leaf: tls.DetailedPeerCertificate,
  pins: ReadonlySet<string>,
  host: string,
  skewMs: number,
  now: number,
): string | null {
  const chain: tls.DetailedPeerCertificate[] = [];
  const seen = new Set<tls.DetailedPeerCertificate>();
  for (let cert: tls.DetailedPeerCertificate | undefined = leaf; cert?.raw && !seen.has(cert); ) {
    seen.add(cert);
    chain.push(cert);
    cert = cert.issuerCertificate;
  }
  const fingerprints = chain.map((c) => c.fingerprint256.replaceAll(':', '').toLowerCase());
  const at = fingerprints.findIndex((fp) => pins.has(fp));
  if (at < 0) {
    return `no presented certificate matches the pinned fingerprints (presented ${fingerprints.join(', ') || 'none'})`;
  }
  if (at === 0) return null;
  let path: ReturnType<typeof parseCertificateDer>[];
  try {
    path = chain.slice(0, at + 1).map((c, i) => parseCertificateDer(c.raw, `presented certificate ${i}`));
  } catch (error) {
    return `a presented certificate does not parse (${describeCause(error)})`;
  }
  const links = checkLinks(path);
  if (links.length > 0) {
    return `the presented chain does not lead to the pinned certificate by signature (${links[0]!.message})`;
  }
  const options: PathOptions = { purpose: 'server', now, skewMs, anchor: at };
  const problems = [
    ...checkIssuers(path, at),
    ...checkValidity(path, options),
    ...checkPurpose(path, options),
  ];
  if (problems.length > 0) {
    return `the presented chain is not valid up to the pinned certificate: ${problems.map((p) => p.message).join('; ')}`;
  }
  const identity = tls.checkServerIdentity(host, leaf);
  return identity ? `the server certificate is not valid for ${host} (${identity.message})` : null;
}
