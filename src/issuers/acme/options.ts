/**
 * The AcmeIssuer's options and their validation, done at construction so a mistake fails at
 * start-up, naming the option, instead of at the first order.
 */
import type { ChallengeSolver } from '../../challenges/solver.js';
import { optionError } from '../../errors.js';
import { MAX_TIMEOUT_MS } from '../../net/https-client.js';
import type { AccountKeyType } from './account.js';
import { DEFAULT_POLL, type PollOptions } from './order.js';

/** Options of `AcmeIssuer`. */
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
  /**
   * Certificate profile to request (Let's Encrypt: `classic`, `tlsserver`, `shortlived`). It
   * must be one the directory advertises (`meta.profiles`): otherwise every order fails with
   * INVALID_OPTION naming it. Left out, orders carry no profile, except that an order with an IP
   * identifier asks for `shortlived` when the CA offers it (Let's Encrypt requires it there).
   */
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
  /** How authorizations and orders are polled (see PollOptions; the defaults suit any CA). */
  polling?: Partial<PollOptions>;
  requestTimeoutMs?: number;
}

const invalid = (option: string, problem: string) => optionError(option, problem, 'AcmeIssuer');

/** Checks every option; returns the account key type and the polling schedule with defaults. */
export function validateAcmeOptions(options: AcmeIssuerOptions): {
  keyType: AccountKeyType;
  poll: PollOptions;
} {
  if (typeof options?.directoryUrl !== 'string') throw invalid('directoryUrl', 'is required');
  let url: URL;
  try {
    url = new URL(options.directoryUrl);
  } catch {
    throw invalid('directoryUrl', 'must be a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid('directoryUrl', 'must be http(s)');
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
  if (options.profile !== undefined && (typeof options.profile !== 'string' || options.profile === ''))
    throw invalid('profile', 'must be a non-empty string');
  const timeoutMs = options.requestTimeoutMs;
  if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS))
    throw invalid('requestTimeoutMs', `must be a number > 0 and <= ${MAX_TIMEOUT_MS}`);
  return { keyType, poll: pollOptions(options.polling) };
}

/** The polling options with defaults; each must be a positive number of milliseconds. */
function pollOptions(given: Partial<PollOptions> | undefined): PollOptions {
  const poll = { ...DEFAULT_POLL, ...(given ?? {}) };
  for (const [name, value] of Object.entries(poll)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
      throw invalid(`polling.${name}`, 'must be a positive number of milliseconds');
  }
  return poll;
}
