/**
 * The ACME issuer (RFC 8555), on acme-client's protocol layer with certkeeper's own transport,
 * polling, challenge solvers, typed errors, ARI (RFC 9773) and profiles.
 *
 * One attempt = one order. Anything that goes wrong ends the attempt with a typed error and the
 * lifecycle decides when to try again (honouring the CA's Retry-After); the current certificate
 * is served meanwhile. An invalid order is never resumed: the next attempt creates a new one,
 * and the failed order's pending authorizations are deactivated so they are not handed back.
 */

import { CHALLENGE_TYPES, type ChallengeType } from '../../challenges/solver.js';
import type { Clock } from '../../clock.js';
import type { CertificateInfo } from '../../crypto/inspect.js';
import { parseCertificates } from '../../crypto/inspect.js';
import { CertkeeperError, describeCause, isCertkeeperError } from '../../errors.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
  NameValidation,
  RenewalWindow,
  RevocationReason,
} from '../issuer.js';
import { REVOCATION_REASON_CODES } from '../revocation.js';
import { AcmeAccounts, type AcmeClient } from './account.js';
import { fetchRenewalInfo, Replacements, refusesReplaces } from './ari.js';
import type { AcmeIssuerOptions } from './options.js';
import { validateAcmeOptions } from './options.js';
import { type Authorization, type PollOptions, pollStatus, solveAuthorization } from './order.js';
import { isProblem } from './problems.js';
import { chooseProfile, identifierType } from './profiles.js';
import { AcmeTransport, withSignal } from './transport.js';

export type { AcmeIssuerOptions } from './options.js';

const FALLBACK_MEMORY_MS = 60 * 60_000;
/** Deactivating a given-up order's authorizations is best effort, and bounded. */
const ABANDON_TIMEOUT_MS = 5_000;

/** Issues certificates from an ACME CA (RFC 8555), with ARI renewal windows and profiles where the CA offers them. */
export class AcmeIssuer implements Issuer {
  readonly id: string;
  readonly #o: AcmeIssuerOptions;
  readonly #transport: AcmeTransport;
  readonly #accounts: AcmeAccounts;
  readonly #poll: PollOptions;
  readonly #failures = new Map<string, number>();
  readonly #replacements = new Replacements();

  constructor(options: AcmeIssuerOptions) {
    const { keyType, poll } = validateAcmeOptions(options);
    this.#o = options;
    this.id = options.directoryUrl;
    this.#poll = poll;
    this.#transport = new AcmeTransport({
      ca: options.ca,
      timeoutMs: options.requestTimeoutMs,
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
      const window = await fetchRenewalInfo(
        this.#transport,
        url,
        certificate,
        context.clock.now(),
        context.logger,
      );
      // The CA answered for it: a renewal may name it in `replaces`.
      this.#replacements.known(certificate);
      return window;
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
      identifiers: request.names.map((name) => ({ type: identifierType(name), value: name })),
    };
    const profile = chooseProfile(
      request.profile ?? this.#o.profile,
      request.names,
      directory,
      this.#o.directoryUrl,
    );
    if (profile !== undefined) payload.profile = profile;
    const replaces = await this.#replaces(request, directory, context);
    if (replaces) payload.replaces = replaces;

    let order: Awaited<ReturnType<AcmeClient['createOrder']>>;
    try {
      order = await client.createOrder(payload as never);
    } catch (error) {
      if (!replaces || !refusesReplaces(error)) throw error;
      // RFC 9773 §5: the CA may refuse `replaces` (already replaced, another account's or another
      // CA's certificate). The certificate must still be renewed: order without it, now.
      context.logger.info('CA refused "replaces"; ordering without it', {
        certId: replaces,
        problem: error.details.type,
        detail: error.details.detail,
      });
      this.#replacements.refused(replaces);
      delete payload.replaces;
      order = await client.createOrder(payload as never);
    }
    const granted = (order as { profile?: unknown }).profile;
    if (profile !== undefined && granted !== undefined && granted !== profile) {
      context.logger.warn('the CA created the order under another profile than asked', {
        asked: profile,
        granted: String(granted).slice(0, 100),
      });
    }

    const authorizations = (await client.getAuthorizations(order)) as unknown as Authorization[];
    try {
      const validation = await Promise.all(
        authorizations.map(async (authz): Promise<NameValidation> => {
          const identifier = `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
          // Valid already: the CA reused an earlier authorization of this account; the challenge
          // that validated it then is named when the CA still lists it.
          if (authz.status === 'valid') {
            const type = authz.challenges?.find((c) => c.status === 'valid')?.type;
            return { identifier, challenge: isChallengeType(type) ? type : null, reused: true };
          }
          if (authz.status !== 'pending') {
            throw new CertkeeperError(
              'ORDER_INVALID',
              `authorization for ${authz.identifier.value} is ${authz.status}`,
            );
          }
          const challenge = await solveAuthorization(
            client,
            authz,
            this.#plan(context.clock),
            context,
            this.#poll,
          );
          return { identifier, challenge, reused: false };
        }),
      );
      type OrderState = typeof order & { status: string; url: string; [key: string]: unknown };
      // Every authorization is valid: the order is ready now at any CA that updates it as it
      // updates them (Boulder, Pebble), so the first look costs no wait.
      let current = await pollStatus<OrderState>(client, order.url, context.signal, this.#poll, {
        now: true,
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
      this.#remember(chainPem);
      return { chainPem, validation };
    } catch (error) {
      await this.#abandon(client, authorizations, context);
      throw error;
    }
  }

  /** A certificate this CA issued may be named in `replaces`; what it is worth is judged later. */
  #remember(chainPem: string): void {
    try {
      const [leaf] = parseCertificates(chainPem);
      if (leaf) this.#replacements.known(leaf.info);
    } catch {
      // Not a chain: the manager's validation rejects it with the reason.
    }
  }

  /** The certID for `replaces`: only when the CA speaks ARI and may accept it for this certificate. */
  async #replaces(
    request: CertificateRequest,
    directory: Record<string, unknown>,
    context: IssuerContext,
  ): Promise<string | undefined> {
    const url = directory.renewalInfo;
    if (!request.current || this.#o.ari === false || typeof url !== 'string') return undefined;
    return this.#replacements.replaces(request.current.info, url, this.#transport, context.logger);
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

  #plan(clock: Clock) {
    const failures = this.#failures;
    return {
      solvers: this.#o.challenges,
      recentlyFailed(identifier: string, type: ChallengeType) {
        const at = failures.get(`${identifier}|${type}`);
        return at !== undefined && clock.now() - at < FALLBACK_MEMORY_MS;
      },
      markFailed(identifier: string, type: ChallengeType) {
        failures.set(`${identifier}|${type}`, clock.now());
      },
    };
  }
}

function isChallengeType(type: unknown): type is ChallengeType {
  return CHALLENGE_TYPES.includes(type as ChallengeType);
}
