/**
 * Getting a new certificate from the configured issuers, in order: a fresh key and CSR, the
 * issuer's `renew` when it issued the current certificate and can renew it (step-ca's mTLS
 * renewal), else `issue`; the answer is parsed and validated against the issuer's trust anchors
 * before anything is stored. A refusal is reported (`rolledBack`) and the next issuer is tried.
 */

import { untilAborted } from '../abort.js';
import { createCsr } from '../crypto/csr.js';
import { parseCertificates } from '../crypto/inspect.js';
import { PrivateKey } from '../crypto/keys.js';
import { validateBundle } from '../crypto/validate.js';
import { CertkeeperError } from '../errors.js';
import type { CertificateRequest, IssuerCapabilities, IssuerContext } from '../issuers/issuer.js';
import type { Logger } from '../logger.js';
import type { ManagedCertificate } from './options.js';
import type { Generation } from './records.js';
import { asError } from './state.js';

export interface IssueEnvironment {
  /** The issuers in order, with what each can do beyond `issue`. */
  issuers: IssuerCapabilities[];
  context(signal: AbortSignal): IssuerContext;
  validate(generation: Generation, anchors: string[] | undefined): CertkeeperError | null;
  refused(problem: CertkeeperError, generation: Generation): void;
  logger: Logger;
  now(): number;
}

export async function issueCertificate(
  cert: ManagedCertificate,
  current: Generation | undefined,
  env: IssueEnvironment,
  signal: AbortSignal,
): Promise<Generation> {
  const key = await PrivateKey.generate(cert.keyType);
  const csr = await createCsr({ key, names: cert.names });
  let lastError: CertkeeperError | undefined;
  for (const { issuer, renewer, anchors } of env.issuers) {
    // Given up (time limit, stop, lost lock): the last issuer's error says why; no further issuer.
    if (signal.aborted) throw lastError ?? gaveUp(issuer.id, signal);
    const context = env.context(signal);
    try {
      const request: CertificateRequest = {
        id: cert.id,
        names: [...cert.names],
        purpose: cert.purpose,
        keyType: cert.keyType,
        key,
        csr,
        current: current ? { chainPem: current.chainPem, key: current.key, info: current.info } : undefined,
      };
      // Issuers may be user code: one that ignores the signal still cannot outlast the attempt.
      const issued = await untilAborted(
        request.current && renewer && current?.issuer === issuer.id
          ? renewer.renew({ ...request, current: request.current }, context)
          : issuer.issue(request, context),
        signal,
        () => gaveUp(issuer.id, signal),
      );
      const chain = parseCertificates(issued.chainPem, `certificate from ${issuer.id}`);
      const generation: Generation = {
        issuer: issuer.id,
        chainPem: chain.map((c) => c.pem).join(''),
        key: issued.key ?? key,
        info: chain[0]!.info,
        chain: chain.map((c) => c.info),
        storedAt: env.now(),
      };
      // An empty list means the issuer cannot say: chains are then checked for order only.
      const listed = anchors
        ? await untilAborted(anchors.trustAnchors(context), signal, () => gaveUp(issuer.id, signal))
        : [];
      const problem = env.validate(generation, listed.length > 0 ? listed : undefined);
      if (problem) {
        env.refused(problem, generation);
        throw problem;
      }
      return generation;
    } catch (error) {
      lastError = asError(error);
      env.logger.warn('issuer failed', {
        id: cert.id,
        issuer: issuer.id,
        code: lastError.code,
        error: lastError.message,
      });
    }
  }
  throw lastError ?? new CertkeeperError('ISSUER_FAILED', `no issuer can issue "${cert.id}"`);
}

function gaveUp(issuer: string, signal: AbortSignal): CertkeeperError {
  return new CertkeeperError(
    'ISSUER_UNAVAILABLE',
    `issuer ${issuer} did not answer before the attempt was given up`,
    {
      cause: signal.reason,
      details: { issuer },
    },
  );
}

/**
 * The first problem of a bundle for `cert` at `now`, or null. Anchors are given for fresh
 * issuance only; a stored certificate may be expired and still be served while it is renewed.
 */
export function validateGeneration(
  cert: ManagedCertificate,
  generation: Pick<Generation, 'key' | 'chainPem'>,
  now: number,
  anchors?: string[],
  allowExpired = false,
): CertkeeperError | null {
  const verdict = validateBundle({
    key: generation.key,
    chain: generation.chainPem,
    names: cert.names,
    purpose: cert.purpose,
    trustAnchors: anchors,
    now: new Date(now),
  });
  if (verdict.ok) return null;
  const problems = allowExpired ? verdict.problems.filter((p) => p.code !== 'EXPIRED') : verdict.problems;
  return problems[0] ?? null;
}
