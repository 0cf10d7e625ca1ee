/**
 * Token enrollment with a step-ca compatible CA: the way in for internal services an ACME
 * validation cannot reach.
 *
 *   bootstrap   CA URL + root fingerprint → the root, fetched once and pinned (bootstrap.ts)
 *   enroll      `issue`: the manager's CSR + a one-time token → POST /1.0/sign
 *   renew       `renew`: POST /1.0/renew over mTLS with the current certificate (or /1.0/rekey
 *               with the manager's new key); once expired, a Bearer x5c token signed by the old
 *               key, where the CA allows renewal after expiry
 *   revoke      passive, over mTLS (or `revokeWithToken`)
 *
 * Tokens are single-use. Once the CA has accepted or refused a token it is spent (step-ca burns
 * its `jti` before it even checks the signature), so the outcome is recorded in the store under
 * the hash of the `jti` (spent-tokens.ts) and the token is never presented again: not after a
 * restart, not by another replica sharing the store, not by a retry loop. A new token (a new
 * secret file) is picked up by the next attempt. Errors only a new token can fix carry
 * `details.retryable: false` (see isRetryable), so the manager does not retry them on its normal
 * schedule.
 */
import { parseCertificates } from '../../crypto/inspect.js';
import { CertkeeperError, describeCause, isCertkeeperError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
  RevocationReason,
} from '../issuer.js';
import { fetchRoot, pinnedRoot } from './bootstrap.js';
import { StepCaClient } from './client.js';
import { mintRenewToken } from './mint.js';
import { resolveOptions, type StepCaIssuerOptions } from './options.js';
import { caRefused, enrollmentKey, readSpent, rememberSpent } from './spent-tokens.js';
import { checkToken, readToken, tokenId } from './token.js';
import type { TokenSource } from './token-source.js';

export type { StepCaIssuerOptions };

/** Enrolls with a step-ca compatible CA using a one-time token, then renews over mutual TLS. */
export class StepCaIssuer implements Issuer {
  readonly id: string;
  readonly caUrl: URL;
  readonly #fingerprint: string;
  readonly #token: TokenSource | undefined;
  readonly #timeoutMs: number;
  readonly #notAfter: string | undefined;
  readonly #rekey: boolean;
  readonly #renewAfterExpiry: boolean;
  #root: string | undefined;
  #bootstrapping: Promise<string> | undefined;

  constructor(options: StepCaIssuerOptions) {
    const o = resolveOptions(options);
    this.id = o.id;
    this.caUrl = o.caUrl;
    this.#fingerprint = o.fingerprint;
    this.#root = o.rootPem;
    this.#token = o.token;
    this.#timeoutMs = o.timeoutMs;
    this.#notAfter = o.notAfter;
    this.#rekey = o.rekey;
    this.#renewAfterExpiry = o.renewAfterExpiry;
  }

  /** The pinned root's fingerprint (lowercase hex). */
  get rootFingerprint(): string {
    return this.#fingerprint;
  }

  /** step-ca's leaves carry serverAuth and clientAuth: one certificate serves both ways. */
  supportsPurpose(_purpose: CertificatePurpose): boolean {
    return true;
  }

  async trustAnchors(context: IssuerContext): Promise<string[]> {
    return [await this.rootCertificate(context)];
  }

  /**
   * The pinned root (PEM), bootstrapping it on first use: from the options, else from the
   * store (re-checked against the fingerprint), else fetched from the CA and checked.
   */
  rootCertificate(context?: Partial<IssuerContext>): Promise<string> {
    if (this.#root) return Promise.resolve(this.#root);
    this.#bootstrapping ??= this.#bootstrap(context?.store, context?.signal).finally(() => {
      this.#bootstrapping = undefined;
    });
    return this.#bootstrapping;
  }

  async #bootstrap(store: Store | undefined, signal: AbortSignal | undefined): Promise<string> {
    const key = enrollmentKey(this.id, 'root.pem');
    const cached = store ? await store.get(key) : null;
    // The store is writable by others: only the one certificate the fingerprint pins is taken
    // from it. A cache holding anything else (an appended CA, garbage) is re-fetched and rewritten.
    const pinned = cached ? pinnedRoot(Buffer.from(cached).toString('utf8'), this.#fingerprint) : null;
    if (pinned) {
      this.#root = pinned;
      return pinned;
    }
    // fetchRoot answers the one pinned certificate only, whatever else the CA sent.
    const pem = await fetchRoot({
      caUrl: this.caUrl,
      fingerprint: this.#fingerprint,
      timeoutMs: this.#timeoutMs,
      signal,
    });
    if (store) await store.put(key, pem);
    this.#root = pem;
    return pem;
  }

  async #client(context: IssuerContext): Promise<StepCaClient> {
    const root = await this.rootCertificate(context);
    return new StepCaClient({ caUrl: this.caUrl, root, timeoutMs: this.#timeoutMs });
  }

  /** Calls `listener` when the token file changes (see TokenSource.watch). Returns an unsubscribe. */
  watchToken(listener: () => void): () => void {
    return this.#token?.watch(listener) ?? (() => {});
  }

  /** Stops watching the token file. Idempotent. The store is not closed: its creator closes it. */
  async close(): Promise<void> {
    await this.#token?.close();
  }

  // ---- enrollment ---------------------------------------------------------------------------

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    const token = await this.#token?.read();
    if (!token) {
      const where = this.#token ? this.#token.describe() : 'the options (no token source is configured)';
      throw new CertkeeperError(
        'TOKEN_MISSING',
        `no one-time token in ${where}: mint one for [${request.names.join(', ')}] (certkeeper token …)`,
        { details: { id: request.id } },
      );
    }
    return this.#enroll(token, request, context);
  }

  async #enroll(
    token: string,
    request: CertificateRequest,
    context: IssuerContext,
  ): Promise<IssuedCertificate> {
    const claims = readToken(token);
    const id = tokenId(token, claims);
    const source = this.#token?.describe() ?? 'the token';
    const spent = await readSpent(context.store, this.id, id);
    if (spent) {
      throw new CertkeeperError(
        'TOKEN_ALREADY_USED',
        `the one-time token in ${source} was already presented to the CA (at ${spent.presentedAt}, ` +
          `outcome ${spent.outcome}); tokens are single-use: provide a new one`,
        {
          details: {
            id: request.id,
            presentedAt: spent.presentedAt,
            outcome: spent.outcome,
            retryable: false,
          },
        },
      );
    }
    const root = await this.rootCertificate(context);
    checkToken(claims, {
      caUrl: this.caUrl,
      endpoint: '1.0/sign',
      rootFingerprint: this.#fingerprint,
      names: request.names,
      now: context.clock.now(),
    });
    context.logger.info('enrolling with a one-time token', { id: request.id, names: request.names, source });
    const client = new StepCaClient({ caUrl: this.caUrl, root, timeoutMs: this.#timeoutMs });
    const presentedAt = new Date(context.clock.now()).toISOString();
    try {
      const chainPem = await client.sign(request.csr.pem, token, {
        notAfter: this.#notAfter,
        signal: context.signal,
      });
      const serial = parseCertificates(chainPem)[0]!.info.serialNumber;
      // The token is spent now whatever happens next: failing to note it must not throw away
      // the certificate it bought (the stored certificate itself keeps the token from being
      // presented again once the manager commits it).
      await rememberSpent(context.store, this.id, id, { presentedAt, outcome: 'enrolled', serial }).catch(
        (error: unknown) =>
          context.logger.warn('could not record the spent enrollment token', {
            id: request.id,
            error: describeCause(error),
          }),
      );
      return { chainPem };
    } catch (error) {
      if (!caRefused(error)) throw error;
      // step-ca's 401 text is generic; some versions and proxies show the reason of a replay.
      const replay = error.code === 'TOKEN_REJECTED' && /already used/i.test(String(error.details.caMessage));
      const code = replay ? 'TOKEN_ALREADY_USED' : error.code;
      await rememberSpent(context.store, this.id, id, {
        presentedAt,
        outcome: `${code} ${error.details.status}`,
      });
      if (error.code !== 'TOKEN_REJECTED') throw error;
      throw new CertkeeperError(
        code,
        `the CA refused the one-time token from ${source} (401: ${error.details.caMessage}). A token is ` +
          'single-use and valid for minutes: it may have been used already, be expired by the CA clock, ' +
          "name a CA host outside the CA's DNS names, or come from an unknown provisioner. Provide a new one",
        { details: { id: request.id, status: 401, caMessage: error.details.caMessage, retryable: false } },
      );
    }
  }

  // ---- renewal --------------------------------------------------------------------------------

  async renew(
    request: CertificateRequest & { current: NonNullable<CertificateRequest['current']> },
    context: IssuerContext,
  ): Promise<IssuedCertificate> {
    const { current } = request;
    const client = await this.#client(context);
    const now = context.clock.now();
    const self = { key: current.key, chainPem: current.chainPem };
    // Past (or about to pass) notAfter the CA's TLS handshake would refuse the certificate.
    const margin = Math.min(30_000, current.info.lifetimeMs / 20);
    const expired = current.info.notAfter.getTime() - margin <= now;
    try {
      if (!expired && this.#rekey) {
        return { chainPem: await client.rekey(self, request.csr.pem, context.signal) };
      }
      if (!expired) return { chainPem: await client.renew(self, context.signal), key: current.key };
      if (!this.#renewAfterExpiry) {
        throw new CertkeeperError(
          'TOKEN_REJECTED',
          'renewal after expiry is disabled (renewAfterExpiry: false)',
          { details: { retryable: false } },
        );
      }
      const bearer = await mintRenewToken({
        caUrl: this.caUrl,
        chainPem: current.chainPem,
        key: current.key,
        now,
      });
      return { chainPem: await client.renewWithToken(bearer, context.signal), key: current.key };
    } catch (error) {
      if (!isCertkeeperError(error, 'TOKEN_REJECTED')) throw error;
      return this.#renewalRefused(request, context, expired, error);
    }
  }

  /**
   * The CA will not renew this certificate (revoked, expired where it does not renew expired
   * ones, renewal disabled). A fresh token, if the source now holds one, re-enrolls; otherwise
   * only a person can help, and the error says what they must do.
   */
  async #renewalRefused(
    request: CertificateRequest & { current: NonNullable<CertificateRequest['current']> },
    context: IssuerContext,
    expired: boolean,
    refusal: CertkeeperError,
  ): Promise<IssuedCertificate> {
    const token = await this.#token?.read();
    if (token) {
      let fresh = true;
      try {
        fresh = !(await readSpent(context.store, this.id, tokenId(token, readToken(token))));
      } catch {
        // a malformed token is reported by #enroll
      }
      if (fresh) {
        context.logger.info('renewal refused; enrolling again with the new one-time token', {
          id: request.id,
        });
        return this.#enroll(token, request, context);
      }
    }
    const { serialNumber, notAfter } = request.current.info;
    const why = expired
      ? `it expired at ${notAfter.toISOString()} and the CA does not renew expired certificates`
      : 'the CA refused the renewal (revoked, or renewal disabled for its provisioner)';
    throw new CertkeeperError(
      'NEW_TOKEN_REQUIRED',
      `certificate ${serialNumber} cannot be renewed: ${why}. A new one-time token is needed` +
        (this.#token ? ` in ${this.#token.describe()}` : ''),
      { cause: refusal, details: { id: request.id, serial: serialNumber, expired, retryable: false } },
    );
  }

  // ---- revocation -----------------------------------------------------------------------------

  /** Passive revocation over mTLS: the certificate authenticates its own revocation. */
  async revoke(
    certificate: { chainPem: string; key?: CertificateRequest['key'] },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void> {
    const leaf = parseCertificates(certificate.chainPem)[0]!.info;
    if (!certificate.key || leaf.notAfter.getTime() <= context.clock.now()) {
      throw new CertkeeperError(
        'NOT_SUPPORTED',
        `certificate ${leaf.serialNumber} cannot revoke itself over mTLS (expired or no key): ` +
          'use revokeWithToken with a token minted by mintRevokeToken',
      );
    }
    const client = await this.#client(context);
    await client.revoke({
      serialHex: leaf.serialNumber,
      reason,
      client: { key: certificate.key, chainPem: certificate.chainPem },
      signal: context.signal,
    });
  }

  /** Passive revocation of `serial` (hex) with a revocation token from the provisioner. */
  async revokeWithToken(
    serial: string,
    token: string,
    reason: RevocationReason,
    context: Pick<IssuerContext, 'clock'> & Partial<IssuerContext>,
  ): Promise<void> {
    checkToken(readToken(token), {
      caUrl: this.caUrl,
      endpoint: '1.0/revoke',
      rootFingerprint: this.#fingerprint,
      now: context.clock.now(),
    });
    const root = await this.rootCertificate(context);
    const client = new StepCaClient({ caUrl: this.caUrl, root, timeoutMs: this.#timeoutMs });
    await client.revoke({ serialHex: serial.toLowerCase(), reason, ott: token, signal: context.signal });
  }
}
