/**
 * The ACME issuer (RFC 8555), on acme-client's protocol layer with certkeeper's own transport,
 * polling, challenge solvers, typed errors, ARI (RFC 9773) and profiles.
 *
 * One attempt = one order. Anything that goes wrong ends the attempt with a typed error and the
 * lifecycle decides when to try again (honouring the CA's Retry-After); the current certificate
 * is served meanwhile. An invalid order is never resumed: the next attempt creates a new one,
 * and the failed order's pending authorizations are deactivated so they are not handed back.
 */

import type { ChallengeSolver, ChallengeType } from '../../challenges/solver.js';
import type { CertificateInfo } from '../../crypto/inspect.js';
import { parseCertificates } from '../../crypto/inspect.js';
import { CertkeeperError, describeCause, isCertkeeperError, optionError } from '../../errors.js';
import { MAX_TIMEOUT_MS } from '../../net/https-client.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
  RenewalWindow,
  RevocationReason,
} from '../issuer.js';
import { REVOCATION_REASON_CODES } from '../revocation.js';
import { type AccountKeyType, AcmeAccounts, type AcmeClient } from './account.js';
import { certId, fetchRenewalInfo } from './ari.js';
import {
  type Authorization,
  DEFAULT_POLL,
  type PollOptions,
  pollStatus,
  solveAuthorization,
} from './order.js';
import { isProblem } from './problems.js';
import { AcmeTransport, withSignal } from './transport.js';

export interface AcmeIssuerOptions {
  /** The CA's directory, `https:` (an `http:` one only with `allowHttp`). */
  directoryUrl: string;
  /**
   * Allow an `http:` directory URL (a CA on loopback in development). Default false: over plain
   * HTTP anyone on the path sees and answers every request, and hands back certificates of its
   * choosing (only `trustAnchors` would catch them).
   */
  allowHttp?: boolean;
  /** `mailto:` URLs for the account. */
  contact?: string[];
  /**
   * Required: `true` agrees to the CA's terms of service (Let's Encrypt and most public CAs have
   * them), `false` says the CA has none (registration then fails, naming this option, if it does).
   */
  agreeToTerms: boolean;
  externalAccountBinding?: { kid: string; hmacKey: string };
  /** Default ECDSA P-256. */
  accountKeyType?: AccountKeyType;
  /** Challenge solvers in order of preference; a failed type is tried last on the next order. */
  challenges: ChallengeSolver[];
  /** Certificate profile to request when the directory advertises it (`meta.profiles`). */
  profile?: string;
  /** Prefer the alternate chain whose root has this common name. */
  preferredChain?: string;
  /** Roots (PEM) the issued chains must end at; validated before anything is stored. */
  trustAnchors?: string[];
  /** Roots (PEM) trusted for the CA's own HTTPS endpoints (private CAs, Pebble). */
  ca?: string | string[];
  /** Allow `purpose: 'client'` (public CAs no longer issue clientAuth; private ACME CAs may). */
  clientAuth?: boolean;
  /** Use ARI when the directory offers it (default true). */
  ari?: boolean;
  polling?: Partial<PollOptions>;
  requestTimeoutMs?: number;
}

const FALLBACK_MEMORY_MS = 60 * 60_000;
/** Deactivating a given-up order's authorizations is best effort, and bounded. */
const ABANDON_TIMEOUT_MS = 5_000;

const invalid = (option: string, problem: string) => optionError(option, problem, 'AcmeIssuer');

export class AcmeIssuer implements Issuer {
  readonly id: string;
  readonly #o: AcmeIssuerOptions;
  readonly #transport: AcmeTransport;
  readonly #accounts: AcmeAccounts;
  readonly #poll: PollOptions;
  readonly #failures = new Map<string, number>();
  /** certIDs whose `replaces` the CA refused: not sent again. */
  readonly #replacesRefused = new Set<string>();

  constructor(options: AcmeIssuerOptions) {
    if (typeof options?.directoryUrl !== 'string') throw invalid('directoryUrl', 'is required');
    let url: URL;
    try {
      url = new URL(options.directoryUrl);
    } catch {
      throw invalid('directoryUrl', 'must be a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw invalid('directoryUrl', 'must be http(s)');
    if (options.allowHttp !== undefined && typeof options.allowHttp !== 'boolean')
      throw invalid('allowHttp', 'must be a boolean');
    if (url.protocol === 'http:' && options.allowHttp !== true)
      throw invalid('directoryUrl', 'must be https (an http: directory needs allowHttp: true)');
    if (!Array.isArray(options.challenges) || options.challenges.length === 0) {
      throw invalid('challenges', 'must list at least one challenge solver');
    }
    const types = options.challenges.map((s) => s.type);
    if (new Set(types).size !== types.length) throw invalid('challenges', 'must not repeat a challenge type');
    for (const contact of options.contact ?? []) {
      if (!/^mailto:[^@\s]+@[^@\s]+$/.test(contact))
        throw invalid('contact', `entries must be mailto: URLs (got "${contact}")`);
    }
    const keyType = options.accountKeyType ?? 'ec-p256';
    if (!['ec-p256', 'ec-p384', 'rsa-2048'].includes(keyType))
      throw invalid('accountKeyType', "must be 'ec-p256', 'ec-p384' or 'rsa-2048'");
    // Asked for explicitly: left out, the account registration would fail only at the first
    // order, at 3 a.m., against a CA that has terms.
    if (typeof options.agreeToTerms !== 'boolean') {
      throw invalid(
        'agreeToTerms',
        "is required: true to agree to the CA's terms of service, false for a CA that has none",
      );
    }
    const timeoutMs = options.requestTimeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS))
      throw invalid('requestTimeoutMs', `must be a number > 0 and <= ${MAX_TIMEOUT_MS}`);
    this.#o = options;
    this.id = options.directoryUrl;
    this.#poll = { ...DEFAULT_POLL, ...(options.polling ?? {}) };
    this.#transport = new AcmeTransport({
      ca: options.ca,
      timeoutMs,
      allowHttp: options.allowHttp,
    });
    this.#accounts = new AcmeAccounts(
      {
        directoryUrl: options.directoryUrl,
        contact: options.contact ?? [],
        agreeToTerms: options.agreeToTerms,
        externalAccountBinding: options.externalAccountBinding,
        keyType,
      },
      this.#transport,
    );
  }

  get challengeTypes(): ChallengeType[] {
    return this.#o.challenges.map((s) => s.type);
  }

  supportsPurpose(purpose: CertificatePurpose): boolean {
    return purpose === 'server' || this.#o.clientAuth === true;
  }

  async trustAnchors(): Promise<string[]> {
    return this.#o.trustAnchors ?? [];
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    return withSignal(context.signal, () =>
      this.#withAccount(context, (client) => this.#order(client, request, context)),
    );
  }

  async revoke(
    certificate: { chainPem: string },
    reason: RevocationReason,
    context: IssuerContext,
  ): Promise<void> {
    const [leaf] = parseCertificates(certificate.chainPem);
    await withSignal(context.signal, () =>
      this.#withAccount(context, (client) =>
        client.revokeCertificate(leaf!.pem, { reason: REVOCATION_REASON_CODES[reason] }),
      ),
    );
  }

  async renewalWindow(
    certificate: CertificateInfo & { chainPem: string },
    context: IssuerContext,
  ): Promise<RenewalWindow | null> {
    if (this.#o.ari === false) return null;
    return withSignal(context.signal, async () => {
      const directory = await this.#directory(context);
      const url = directory.renewalInfo;
      if (typeof url !== 'string') return null;
      return fetchRenewalInfo(this.#transport, url, certificate, context.clock.now());
    });
  }

  /** Account key rollover (RFC 8555 §7.3.5). */
  rolloverAccountKey(context: IssuerContext): Promise<void> {
    return withSignal(context.signal, () => this.#accounts.rollover(context));
  }

  /** The stored account URL for a store, if registered. */
  accountUrl(context: IssuerContext): Promise<string | null> {
    return this.#accounts.accountUrl(context.store);
  }

  /**
   * Closes the connections to the CA. Idempotent. The store (accounts, challenges) is not closed:
   * its creator closes it, after the manager using this issuer has stopped.
   */
  async close(): Promise<void> {
    this.#transport.close();
  }

  async #directory(
    context: IssuerContext,
  ): Promise<Record<string, unknown> & { meta?: Record<string, unknown> }> {
    const client = await this.#accounts.client(context);
    return client.http.getDirectory();
  }

  /**
   * Runs `fn` with the account; when the CA no longer accepts it, once more with the account the
   * fleet uses instead (re-registered under the account lock by the first replica to notice).
   */
  async #withAccount<T>(context: IssuerContext, fn: (client: AcmeClient) => Promise<T>): Promise<T> {
    const client = await this.#accounts.client(context);
    try {
      return await fn(client);
    } catch (error) {
      const detail = isCertkeeperError(error) ? String(error.details.detail ?? '') : '';
      // The CA forgot the account (restarted, deactivated): register again, once per fleet.
      const gone =
        isProblem(error, 'accountDoesNotExist') ||
        (isProblem(error, 'unauthorized') && /account/i.test(detail));
      // A signature the CA cannot verify: another replica may have rolled the key over.
      const rolled = isProblem(error, 'malformed') && /JWS|signature/i.test(detail);
      if (!gone && !rolled) throw error;
      const replacement = await this.#accounts.replace(context, client, gone);
      if (!replacement) throw error;
      return fn(replacement);
    }
  }

  async #order(
    client: AcmeClient,
    request: CertificateRequest,
    context: IssuerContext,
  ): Promise<IssuedCertificate> {
    const directory = await client.http.getDirectory();
    const payload: Record<string, unknown> = {
      identifiers: request.names.map((name) => ({
        type: name.includes(':') || /^[\d.]+$/.test(name) ? 'ip' : 'dns',
        value: name,
      })),
    };
    const profiles = directory.meta?.profiles as Record<string, unknown> | undefined;
    if (this.#o.profile) {
      if (profiles && this.#o.profile in profiles) payload.profile = this.#o.profile;
      else
        context.logger.warn('ACME profile not offered by the CA; ordering without it', {
          profile: this.#o.profile,
        });
    }
    const replaces = this.#replaces(request, directory);
    if (replaces) payload.replaces = replaces;

    let order: Awaited<ReturnType<AcmeClient['createOrder']>>;
    try {
      order = await client.createOrder(payload as never);
    } catch (error) {
      if (!replaces || !refusesReplaces(error)) throw error;
      // RFC 9773 §5: a CA may refuse `replaces` (already replaced, unknown); order without it.
      context.logger.info('CA refused "replaces"; ordering without it', {
        certId: replaces,
        problem: error.details.type,
      });
      this.#replacesRefused.add(replaces);
      delete payload.replaces;
      order = await client.createOrder(payload as never);
    }

    const authorizations = (await client.getAuthorizations(order)) as unknown as Authorization[];
    try {
      await Promise.all(
        authorizations.map(async (authz) => {
          if (authz.status === 'valid') return;
          if (authz.status !== 'pending') {
            throw new CertkeeperError(
              'ORDER_INVALID',
              `authorization for ${authz.identifier.value} is ${authz.status}`,
            );
          }
          await solveAuthorization(client, authz, this.#plan(), context, this.#poll);
        }),
      );
      type OrderState = typeof order & { status: string; url: string; [key: string]: unknown };
      let current = await pollStatus<OrderState>(client, order.url, context.signal, this.#poll, {
        retryAfterMs: 0,
      });
      if (current.status !== 'ready' && current.status !== 'valid') {
        throw new CertkeeperError('ORDER_INVALID', `order is ${current.status} after its authorizations`, {
          details: { order: order.url, error: (current as { error?: unknown }).error },
        });
      }
      if (current.status === 'ready') {
        const finalized = await client.finalizeOrder(current, request.csr.pem);
        current =
          finalized.status === 'valid'
            ? ({ ...finalized, url: order.url } as OrderState)
            : await pollStatus<OrderState>(client, order.url, context.signal, this.#poll);
        if (current.status !== 'valid') {
          throw new CertkeeperError('ORDER_INVALID', `order is ${current.status} after finalization`, {
            details: { order: order.url, error: (current as { error?: unknown }).error },
          });
        }
      }
      const chainPem = await client.getCertificate(current, this.#o.preferredChain);
      return { chainPem };
    } catch (error) {
      await this.#abandon(client, authorizations, context);
      throw error;
    }
  }

  /** The certID for `replaces`: only when the CA speaks ARI and has not refused it for this certificate. */
  #replaces(request: CertificateRequest, directory: Record<string, unknown>): string | undefined {
    if (!request.current || this.#o.ari === false || typeof directory.renewalInfo !== 'string')
      return undefined;
    const id = certId(request.current.info);
    return id && !this.#replacesRefused.has(id) ? id : undefined;
  }

  /**
   * Deactivates the still-pending authorizations of a failed order, so the CA does not reuse them.
   * An order given up at the attempt's time limit has a fired signal: these requests get their own.
   */
  async #abandon(client: AcmeClient, authorizations: Authorization[], context: IssuerContext): Promise<void> {
    const signal = context.signal.aborted ? AbortSignal.timeout(ABANDON_TIMEOUT_MS) : context.signal;
    await withSignal(signal, () => this.#deactivate(client, authorizations, context));
  }

  async #deactivate(
    client: AcmeClient,
    authorizations: Authorization[],
    context: IssuerContext,
  ): Promise<void> {
    await Promise.all(
      authorizations.map(async (authz) => {
        try {
          const fresh = await client.api.apiRequest(authz.url!, null, [200]);
          if (fresh.data.status === 'pending') await client.deactivateAuthorization(authz as never);
        } catch (error) {
          context.logger.debug('could not deactivate authorization', {
            url: authz.url,
            error: describeCause(error),
          });
        }
      }),
    );
  }

  #plan() {
    const failures = this.#failures;
    return {
      solvers: this.#o.challenges,
      recentlyFailed(identifier: string, type: ChallengeType) {
        const at = failures.get(`${identifier}|${type}`);
        return at !== undefined && Date.now() - at < FALLBACK_MEMORY_MS;
      },
      markFailed(identifier: string, type: ChallengeType) {
        failures.set(`${identifier}|${type}`, Date.now());
      },
    };
  }
}

/**
 * Whether a newOrder problem is about `replaces` (RFC 9773 §5): `alreadyReplaced`, or a
 * `conflict` / `malformed` that names it. Any other problem (rejectedIdentifier, rateLimited, …)
 * would fail again without it, so ordering a second time would only spend rate limit.
 */
function refusesReplaces(error: unknown): error is CertkeeperError {
  if (!isCertkeeperError(error) || error.code !== 'ACME_PROBLEM') return false;
  const type = String(error.details.type ?? '');
  if (type.endsWith(':alreadyReplaced')) return true;
  const detail = `${String(error.details.detail ?? '')} ${error.message}`;
  return (type.endsWith(':conflict') || type.endsWith(':malformed')) && /replace/i.test(detail);
}
