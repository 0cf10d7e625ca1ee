/**
 * What the Issuer, ChallengeSolver and DnsProvider conformance kits share: how a failure must
 * look (a CertkeeperError with a documented code and no key material), what "promptly" means,
 * and fresh names and tokens for each test.
 */
import { fail } from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import type { PrivateKey } from '../crypto/keys.js';
import { ERROR_CODES, isCertkeeperError } from '../errors.js';
import type { Logger } from '../logger.js';

const KNOWN_CODES: ReadonlySet<string> = new Set<string>(ERROR_CODES);

/** Fails the test listing every problem, in full (an assertion diff would cut them short). */
export function expectNone(what: string, problems: readonly string[]): void {
  if (problems.length > 0) fail(`${what}: ${problems.join('; ')}`);
}

/** Private keys as text: a PEM block, a JWK's private member. */
const KEY_MATERIAL = /PRIVATE KEY|"d"\s*:\s*"|\bd:\s*'/;

/** Everything an error shows a log, an event or a person: message, details, cause, stack, JSON. */
export function errorText(error: unknown): string {
  const parts = [inspect(error, { depth: 8 })];
  if (error instanceof Error) parts.push(error.message, String(error.stack));
  try {
    parts.push(JSON.stringify(error));
  } catch {
    // circular: inspect has it
  }
  return parts.join('\n');
}

/**
 * What is wrong with `error` as a failure of a certkeeper contract (empty when nothing): it must
 * be a CertkeeperError with a documented code, and nothing it shows may hold key material (any
 * PEM private key, or the body of one of `keys`).
 */
export function failureProblems(error: unknown, keys: readonly PrivateKey[] = []): string[] {
  const problems: string[] = [];
  if (!isCertkeeperError(error)) {
    problems.push(`not a CertkeeperError: ${describe(error)}`);
  } else if (!KNOWN_CODES.has(error.code)) {
    problems.push(`undocumented error code ${JSON.stringify(error.code)}`);
  }
  problems.push(...keyMaterialProblems('the error', errorText(error), keys));
  return problems;
}

/** Whether `text` shows key material: any PEM private key, or the bytes of one of `keys`. */
export function keyMaterialProblems(what: string, text: string, keys: readonly PrivateKey[] = []): string[] {
  const problems: string[] = [];
  if (KEY_MATERIAL.test(text)) problems.push(`${what} shows private key material`);
  for (const key of keys) {
    const body = key.toPem().replace(/-----[^-]+-----|\s/g, '');
    // Any 48-character stretch of the key's base64 (a line and a half of PEM) counts.
    for (let i = 0; i + 48 <= body.length; i += 16) {
      if (text.includes(body.slice(i, i + 48))) {
        problems.push(`${what} shows the bytes of a private key`);
        break;
      }
    }
  }
  return problems;
}

/** A logger that keeps every line (message and fields), passing each on to `next` if given. */
export function recordingLogger(next?: Logger): Logger & { text(): string } {
  const lines: string[] = [];
  const level =
    (name: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push(`${name} ${message} ${inspect(fields ?? {}, { depth: 8 })}`);
      next?.[name](message, fields);
    };
  return {
    debug: level('debug'),
    info: level('info'),
    warn: level('warn'),
    error: level('error'),
    text: () => lines.join('\n'),
  };
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return inspect(value, { depth: 2 }).slice(0, 200);
}

/** How a call ended: `settled` false when it was still running at the deadline. */
export interface Outcome<T> {
  settled: boolean;
  rejected: boolean;
  value?: T;
  error?: unknown;
}

/** How `work` ends within `ms`: its value, its rejection, or `settled: false` when it hangs. */
export async function within<T>(work: () => Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false, rejected: false }), ms);
  });
  const ran = Promise.resolve()
    .then(work)
    .then(
      (value): Outcome<T> => ({ settled: true, rejected: false, value }),
      (error: unknown): Outcome<T> => ({ settled: true, rejected: true, error }),
    );
  try {
    return await Promise.race([ran, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh DNS label (lower case, starts with a letter), so tests never see each other's names. */
export function freshLabel(prefix = 'k'): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** A fresh ACME-style token (base64url, 32 bytes of randomness). */
export function freshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** An already aborted signal. */
export function abortedSignal(): AbortSignal {
  const controller = new AbortController();
  controller.abort();
  return controller.signal;
}

/** Polls `probe` every `intervalMs` until it returns true or `ms` pass; the last answer. */
export async function eventually(
  probe: () => Promise<boolean>,
  ms: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() + intervalMs > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
