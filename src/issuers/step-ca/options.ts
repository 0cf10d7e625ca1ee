/**
 * StepCaIssuer's options, validated once at construction: every message names the option and its
 * bound. A root given as a file or PEM is read and checked here, so a wrong path or a root that
 * does not match the fingerprint fails at start-up, not at the first renewal.
 */
import { readFileSync } from 'node:fs';
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import { MAX_TIMEOUT_MS } from '../../net/https-client.js';
import { normalizeFingerprint, parseRoot, rootFingerprint } from './bootstrap.js';
import { type TokenOption, TokenSource } from './token-source.js';

/** Options of `StepCaIssuer`. */
export interface StepCaIssuerOptions {
  /** The CA's URL, e.g. `https://ca.internal:9000`. Tokens must be minted for this host. */
  caUrl: string;
  /** SHA-256 fingerprint of the root (hex, `:` and `-` ignored); the root is fetched and pinned. */
  rootFingerprint?: string;
  /** A root certificate PEM file, instead of (or checked against) the fingerprint. */
  rootFile?: string;
  /** A root certificate PEM, instead of (or checked against) the fingerprint. */
  rootPem?: string;
  /** Where the one-time token comes from: the token, `{ env }` or `{ file }`. */
  token?: TokenOption;
  /** Requested certificate lifetime (whole seconds are sent); default: the CA's. */
  lifetimeMs?: number;
  /** A new key at every renewal (`/1.0/rekey`) instead of renewing the same key. Default false. */
  rekey?: boolean;
  /** Renew an expired certificate with the x5c token, where the CA allows it. Default true. */
  renewAfterExpiry?: boolean;
  /** Per-request timeout. Default 30 s. */
  requestTimeoutMs?: number;
  /** Store identity; default the CA URL. */
  id?: string;
}

export interface ResolvedOptions {
  id: string;
  caUrl: URL;
  fingerprint: string;
  /** The root, when given as a file or PEM (else fetched at bootstrap). */
  rootPem: string | undefined;
  token: TokenSource | undefined;
  timeoutMs: number;
  /** step-ca `notAfter` of sign requests (a Go duration), when a lifetime is configured. */
  notAfter: string | undefined;
  rekey: boolean;
  renewAfterExpiry: boolean;
}

const invalid = (option: string, problem: string) => optionError(option, problem, 'StepCaIssuer');

export function resolveOptions(options: StepCaIssuerOptions): ResolvedOptions {
  if (typeof options?.caUrl !== 'string') throw invalid('caUrl', 'is required');
  let caUrl: URL;
  try {
    caUrl = new URL(options.caUrl);
  } catch {
    throw invalid('caUrl', 'must be a URL');
  }
  if (caUrl.protocol !== 'https:') throw invalid('caUrl', 'must be an https URL');
  if (caUrl.search || caUrl.hash) throw invalid('caUrl', 'must have no query or fragment');
  caUrl = new URL(caUrl.href.replace(/\/+$/, ''));

  let fingerprint: string | undefined;
  if (options.rootFingerprint !== undefined) {
    const fp = normalizeFingerprint(String(options.rootFingerprint));
    if (!fp) throw invalid('rootFingerprint', 'must be a SHA-256 fingerprint (64 hex digits)');
    fingerprint = fp;
  }
  let pem = options.rootPem;
  if (options.rootFile !== undefined) {
    try {
      pem = readFileSync(options.rootFile, 'utf8');
    } catch (error) {
      throw invalid('rootFile', `cannot be read (${describeCause(error)})`);
    }
  }
  let rootPem: string | undefined;
  if (pem !== undefined) {
    const root = parseRoot(pem, options.rootFile ? `root file ${options.rootFile}` : 'rootPem');
    const fp = rootFingerprint(root.pem);
    if (fingerprint && fp !== fingerprint) {
      throw new CertkeeperError(
        'ROOT_FINGERPRINT_MISMATCH',
        `root fingerprint mismatch: configured ${fingerprint}, the root certificate given has ${fp}`,
        { details: { expected: fingerprint, received: [fp] } },
      );
    }
    fingerprint = fp;
    rootPem = root.pem;
  }
  if (!fingerprint) throw invalid('rootFingerprint', 'or rootFile or rootPem is required');

  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  if (!(timeoutMs >= 100 && timeoutMs <= MAX_TIMEOUT_MS))
    throw invalid('requestTimeoutMs', `must be at least 100 and at most ${MAX_TIMEOUT_MS}`);
  let notAfter: string | undefined;
  if (options.lifetimeMs !== undefined) {
    if (!(Number.isFinite(options.lifetimeMs) && options.lifetimeMs >= 1000))
      throw invalid('lifetimeMs', 'must be at least 1000');
    notAfter = `${Math.round(options.lifetimeMs / 1000)}s`;
  }
  return {
    id: options.id ?? caUrl.href.replace(/\/+$/, ''),
    caUrl,
    fingerprint,
    rootPem,
    token: options.token === undefined ? undefined : new TokenSource(options.token, 'token'),
    timeoutMs,
    notAfter,
    rekey: options.rekey ?? false,
    renewAfterExpiry: options.renewAfterExpiry ?? true,
  };
}
