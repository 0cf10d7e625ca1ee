/**
 * Every error certkeeper throws or emits is a `CertkeeperError` with a stable `code`.
 * Match on `err.code`, never on the message: messages may be reworded, codes may not.
 *
 * Messages never carry private key material. The constructor scrubs anything that looks like a
 * PEM private key block or a long base64 run as a last line of defence; call sites are still
 * expected never to interpolate key bytes in the first place.
 */

/**
 * Stable error codes, grouped by the part that raises them. What each means, its usual causes and
 * what to do: docs/errors.md (test/errors-doc.test.ts keeps it in step with this list).
 */
export const ERROR_CODES = [
  // toolkit: parsing and bundle validation
  'MALFORMED_PEM',
  'UNSUPPORTED_KEY',
  'KEY_MISMATCH',
  'CHAIN_INVALID',
  'UNTRUSTED_ROOT',
  'NAME_NOT_COVERED',
  'INVALID_NAME',
  'EXPIRED',
  'NOT_YET_VALID',
  'WRONG_PURPOSE',
  // stores and locks
  'INVALID_STORE_KEY',
  'STORE_CORRUPT',
  'STORE_IO',
  'STORE_NO_SPACE',
  'STORE_READ_ONLY',
  'STORE_CLOSED',
  // a FileStore directory that others could change (foreign owner, group/world-writable, or below
  // a directory another user can write): refused before anything in it is read
  'STORE_UNSAFE',
  // a stored value exists but this process may not read it (permissions): neither absent nor damaged
  'STORE_UNREADABLE',
  'LOCK_ABORTED',
  'LOCK_LOST',
  // issuers
  'ISSUER_FAILED',
  'ISSUER_UNAVAILABLE',
  'CA_CORRUPT',
  // internal CA: its state (root) is gone after it existed, or an older copy of it was replayed
  'CA_ROOT_MISSING',
  'CA_STATE_ROLLBACK',
  // internal CA with its root offline: the operation needs the root key (message names the command)
  'CA_ROOT_OFFLINE',
  'NOT_SUPPORTED',
  // ACME
  'ACME_PROBLEM',
  'RATE_LIMITED',
  'ORDER_INVALID',
  'CHALLENGE_FAILED',
  // a TLS-ALPN-01 challenge record from the store is not a genuine challenge for a name served here
  'CHALLENGE_RECORD_INVALID',
  // no configured challenge can be answered now (TLS-ALPN-01 with no attached server listening)
  'CHALLENGE_UNAVAILABLE',
  // token enrollment (step-ca compatible CAs)
  'ROOT_FINGERPRINT_MISMATCH',
  'TOKEN_MISSING',
  'TOKEN_MALFORMED',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_ROOT_MISMATCH',
  'TOKEN_NAMES_MISMATCH',
  'TOKEN_ALREADY_USED',
  'TOKEN_REJECTED',
  'NEW_TOKEN_REQUIRED',
  'CA_REFUSED',
  'PROVISIONER_KEY_INVALID',
  // trust stores and CA rotation
  'TRUST_SOURCE_FAILED',
  'TRUST_UPDATE_REFUSED',
  'TRUST_EMPTY',
  'TRUST_PIN_MISMATCH',
  'CA_ROTATION_STATE',
  // revocation checked by certkeeper itself: a CRL that is not the issuer's genuine, current CRL;
  // no CRL could be fetched from the certificate's distribution points
  'CRL_INVALID',
  'CRL_UNAVAILABLE',
  // lifecycle
  'LIVE_VERIFY_FAILED',
  // a deploy target refused a new certificate (a reload command failed, a file could not be written)
  'DEPLOY_FAILED',
  'UNKNOWN_CERTIFICATE',
  'MANAGER_STOPPED',
  'RENEWAL_FAILED',
  // another configuration (names, key type, purpose) claims this certificate id in a shared store
  'CERTIFICATE_CONFLICT',
  // ready() gave up waiting (time limit, signal, a failure retrying cannot fix): names each
  // certificate not ready with its typed error (`details.failed`, `details.errors`, `cause`)
  'NOT_READY',
  // outbound mTLS: the client certificate is not obtained yet; the agent or dispatcher is closed
  'CERTIFICATE_UNAVAILABLE',
  'AGENT_CLOSED',
  // operations (the CLI): a system tool certkeeper ran failed (update-ca-certificates, certutil)
  'TOOL_FAILED',
  // configuration
  'INVALID_OPTION',
] as const;

/** Stable error codes: match on these, never on messages. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('certkeeper.error');

const PEM_PRIVATE_BLOCK =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;
// 40+ base64 characters in a row: candidates for key bytes, DER blobs, JWK "d" values.
const LONG_BASE64 = /[A-Za-z0-9+/_-]{40,}={0,2}/g;
// A URL's scheme, host and port name a server, not a secret, and are kept: without this a port
// followed by a long path is one base64-like run (`:14000/authz/Xk3…`) and the port was redacted.
// Only a real host qualifies (labels of at most 63 characters, or a bracketed IPv6 literal), and
// it must end where an origin ends, so key text glued to `https://` is still judged as a run.
const URL_ORIGIN =
  /\b[a-z][a-z0-9+.-]*:\/\/(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63})(?::\d{1,5})?(?=[/?#\s)"'\]>,;]|$)/;
const RUNS = new RegExp(`(${URL_ORIGIN.source})|${LONG_BASE64.source}`, 'g');
/**
 * Key bytes as other libraries print them: `util.inspect` of a Buffer (`<Buffer 30 81 87 …>`),
 * of a typed array (`Uint8Array(138) [ 48, 129, … ]`) or an ArrayBuffer (`[Uint8Contents]: <…>`),
 * and a Buffer's JSON. Redacted whatever their length; a message cut short loses the closing bracket.
 */
const PRINTED_BYTES: [RegExp, string][] = [
  [/<Buffer(?:\s+[0-9a-f]{2})*(?:\s*\.\.\.\s*\d+ more bytes?)?>?/g, '<Buffer [redacted]>'],
  [/\b(?:Uint8|Uint8Clamped|Int8|Uint16|Int16|Uint32|Int32)Array\(\d+\) \[[^\]]*\]?/g, '[redacted bytes]'],
  [/\[Uint8Contents\]:\s*<[^>]*>?/g, '[Uint8Contents]: <[redacted]>'],
  [/\{\s*"type"\s*:\s*"Buffer"\s*,\s*"data"\s*:\s*\[[\d,\s]*\]?\s*\}?/g, '[redacted bytes]'],
];
// Hex bytes with separators (`30:81:87…`, `30 81 87…`) longer than a SHA-256 fingerprint (32 bytes).
const SEPARATED_HEX = /\b(?:[0-9a-fA-F]{2}[: ]){32,}[0-9a-fA-F]{2}\b/g;
// Private JWK members (and an EAB HMAC key), in JSON and in util.inspect form, however short.
const JWK_SECRET_JSON = /("(?:d|p|q|dp|dq|qi|k|hmacKey)"\s*:\s*)"[^"]*"/g;
const JWK_SECRET_INSPECT = /(\b(?:d|p|q|dp|dq|qi|k|hmacKey)\s*:\s*)'[^']*'/g;

/** Removes anything shaped like key material from a human-readable string. */
export function scrubSecrets(text: string): string {
  let out = text.replace(PEM_PRIVATE_BLOCK, '[private key redacted]');
  for (const [pattern, replacement] of PRINTED_BYTES) out = out.replace(pattern, replacement);
  return out
    .replace(JWK_SECRET_JSON, '$1"[redacted]"')
    .replace(JWK_SECRET_INSPECT, "$1'[redacted]'")
    .replace(SEPARATED_HEX, '[redacted]')
    .replace(RUNS, (run, origin: string | undefined) =>
      origin !== undefined ? origin.replace(LONG_BASE64, redactRun) : redactRun(run),
    );
}

function redactRun(run: string): string {
  return isSecretRun(run) ? '[redacted]' : run;
}

/**
 * A run with `/` is a file path or a store key, or standard base64 of key bytes (base64url has no
 * `/`). Judged as one string, a path with a temp directory's random suffix or a host name in it
 * mixes upper case, lower case and digits like key bytes do, so such a run is judged by its parts:
 * real base64 (a `+` or padding) stays one run; a segment that is a secret alone (base64url in a
 * URL path, long hex) makes the whole run one; and so does a stretch of segments without `-` or
 * `_` (standard base64 has neither) that holds a long mixed segment or looks random as a whole.
 */
function isSecretRun(run: string): boolean {
  if (!run.includes('/') || /[+=]/.test(run)) return looksLikeSecret(run);
  const segments = run.split('/');
  if (segments.some((s) => s.length >= 40 && looksLikeSecret(s))) return true;
  let stretch = '';
  for (const s of [...segments, '-']) {
    if (!/[-_]/.test(s)) {
      if (s.length >= 20 && looksLikeSecret(s)) return true;
      stretch += s;
      continue;
    }
    if (stretch.length >= 30 && looksLikeSecret(stretch) && looksRandom(stretch)) return true;
    stretch = '';
  }
  return false;
}

/**
 * Random base64 changes class (upper, lower, digit) at ~62% of its neighbouring characters and
 * half its letters are upper case; words, names and serials are far below either.
 */
function looksRandom(text: string): boolean {
  const letters = text.replace(/[^A-Za-z]/g, '');
  const upper = letters.replace(/[^A-Z]/g, '').length / Math.max(1, letters.length);
  let changes = 0;
  const kind = (c: string) => (c >= 'a' && c <= 'z' ? 0 : c >= 'A' && c <= 'Z' ? 1 : 2);
  for (let i = 1; i < text.length; i++) if (kind(text[i]!) !== kind(text[i - 1]!)) changes++;
  return changes / (text.length - 1) >= 0.4 || upper >= 0.3;
}

/**
 * Encoded key material is random: base64 of it mixes upper case, lower case and digits, and hex
 * of it is long. Store paths, names, serials and fingerprints are neither, and stay readable.
 */
function looksLikeSecret(run: string): boolean {
  if (/^[0-9a-fA-F]+$/.test(run)) return run.length > 64;
  return /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run);
}

export interface CertkeeperErrorOptions {
  cause?: unknown;
  /** Structured, non-secret facts for logs and events (names, serials, option paths). */
  details?: Record<string, unknown>;
}

/** The error certkeeper throws: a stable `code` (see `ERROR_CODES`), a message free of secrets, and `details`. */
export class CertkeeperError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: CertkeeperErrorOptions = {}) {
    super(
      scrubSecrets(message),
      options.cause === undefined ? undefined : { cause: safeCause(options.cause) },
    );
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return 'CertkeeperError';
  }

  /**
   * `instanceof` holds across duplicate installs of certkeeper (two copies in node_modules),
   * the same way undici's errors do.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  toJSON(): { name: string; code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, details: { ...this.details } };
  }
}

/**
 * What is kept as `cause`: our own errors as they are; anything else as a fresh Error with its
 * name, code, scrubbed message and scrubbed stack only. Errors of other libraries carry whatever
 * they were working on — an HTTP client's request config with an Authorization header (a DNS
 * provider's API token), a driver's command arguments — and `util.inspect` prints `[cause]` whole.
 */
function safeCause(cause: unknown): unknown {
  if (cause instanceof CertkeeperError) return cause;
  const copy = new Error(describeCause(cause));
  if (cause instanceof Error) {
    copy.name = cause.name;
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === 'string' || typeof code === 'number') Object.assign(copy, { code });
    if (cause.stack) copy.stack = scrubSecrets(cause.stack);
  }
  return copy;
}

export function isCertkeeperError(value: unknown, code?: ErrorCode): value is CertkeeperError {
  return value instanceof CertkeeperError && (code === undefined || value.code === code);
}

/** A short, secret-free description of an unknown thrown value, for wrapping. */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return scrubSecrets(code ? `${code}: ${cause.message}` : cause.message);
  }
  return scrubSecrets(String(cause));
}

/**
 * Codes for which another attempt with the same configuration and inputs cannot succeed: the
 * configuration is wrong, or a one-time token is spent, expired or refused and only a new one
 * helps. The manager then waits its longest retry delay (`renewal.retryMaxMs`) instead of its
 * normal backoff; a new input is picked up by the next attempt (or at once: `renewNow`, e.g. from
 * `StepCaIssuer.watchToken`). Everything else (a CA down or rate limiting, a failed challenge, a
 * store outage, a token not valid *yet*) is retryable.
 */
const NOT_RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INVALID_OPTION',
  'INVALID_NAME',
  'UNSUPPORTED_KEY',
  'NOT_SUPPORTED',
  'TOKEN_MISSING',
  'TOKEN_MALFORMED',
  'TOKEN_EXPIRED',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_ROOT_MISMATCH',
  'TOKEN_NAMES_MISMATCH',
  'TOKEN_ALREADY_USED',
  'TOKEN_REJECTED',
  'NEW_TOKEN_REQUIRED',
  'PROVISIONER_KEY_INVALID',
  'ROOT_FINGERPRINT_MISMATCH',
]);

/**
 * Whether retrying can help. The error's own `details.retryable` (a boolean) decides when set: an
 * issuer sets it where the code alone cannot say (`ACME_PROBLEM` with `rejectedIdentifier` or
 * `caa`, a `CA_REFUSED` from the CA itself); otherwise the code's default (see NOT_RETRYABLE).
 * Anything that is not a CertkeeperError is retryable.
 */
export function isRetryable(error: unknown): boolean {
  if (!isCertkeeperError(error)) return true;
  const flag = error.details.retryable;
  if (typeof flag === 'boolean') return flag;
  return !NOT_RETRYABLE.has(error.code);
}

/**
 * The one builder of INVALID_OPTION errors. `option` is the option's path as the caller wrote it
 * (`graceMs`, `renewal.retryMinMs`, `certificates[1].purpose`) and always lands in
 * `details.option`, so a program can point at the option without reading the message. The message
 * names it too: `<owner> option <option> <problem>`, or `<option> <problem>` without an owner.
 * Never put the offending value in `problem` when it may be a secret (a mistyped key).
 */
export function optionError(
  option: string,
  problem: string,
  owner?: string,
  details: Record<string, unknown> = {},
): CertkeeperError {
  const message = owner === undefined ? `${option} ${problem}` : `${owner} option ${option} ${problem}`;
  return new CertkeeperError('INVALID_OPTION', message, { details: { ...details, option } });
}
