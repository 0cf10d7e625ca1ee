/**
 * One attempt at a new certificate for one managed certificate: under the store lock named for
 * it, adopt what another replica stored meanwhile (adoption.ts), else issue (issue.ts) and deploy
 * (deploy.ts). Its outcome is recorded on the state — failures count, back off and are reported
 * through `renewalFailed` — and returned, for the callers that wait on it (renewNow, renewAll).
 */
import { CertkeeperError, describeCause, isRetryable } from '../errors.js';
import type { IssuerCapabilities } from '../issuers/issuer.js';
import { layout } from '../store/layout.js';
import { withLock } from '../store/with-lock.js';
import { adoptStored } from './adoption.js';
import type { ManagerCore } from './core.js';
import { deployGeneration } from './deploy.js';
import type { ObtainReason } from './events.js';
import { issueCertificate, validateGeneration } from './issue.js';
import { failureRetryDelay } from './policy.js';
import { asError, type CertState, servedFacts } from './state.js';

/** Resolves with the failure, or undefined once a new certificate is served (or adopted). */
export async function attempt(
  core: ManagerCore,
  state: CertState,
  reason: ObtainReason,
): Promise<CertkeeperError | undefined> {
  const { cert } = state;
  const { options } = core;
  const attemptNo = state.failures + 1;
  const started = options.clock.now();
  core.emit('obtaining', { id: cert.id, names: [...cert.names], reason, attempt: attemptNo });
  state.blocked = undefined;
  try {
    // The current certificate matters for renewal (ARI `replaces`, mTLS renew, rollback).
    if (!state.current && state.stored) await core.materialize(state);
    const signal = AbortSignal.any([core.signal, AbortSignal.timeout(options.issueTimeoutMs)]);
    let adopted = false;
    await withLock(
      options.store,
      layout.issueLock(cert.id),
      async (lease, lockSignal) => {
        if (await adoptStored(core, state, reason === 'forced' ? started : undefined)) {
          adopted = true;
          return;
        }
        const generation = await issueCertificate(
          cert,
          state.current,
          {
            issuers: core
              .issuersFor(cert)
              .map((issuer) => tracked(options.capabilities.get(issuer.id)!, state.lingering)),
            context: (s) => core.context(s),
            validate: (g, anchors) => validateGeneration(cert, g, options.clock.now(), anchors),
            refused: (problem, g) =>
              core.emit('rolledBack', {
                id: cert.id,
                reason: problem,
                rejectedSerial: g.info.serialNumber,
                servingSerial: state.current?.info.serialNumber ?? null,
              }),
            logger: options.logger,
            now: () => options.clock.now(),
          },
          AbortSignal.any([signal, lockSignal]),
        );
        await deployGeneration(core, state, generation, started, { lease, signal: lockSignal });
      },
      {
        ttlMs: options.lockTtlMs,
        signal,
        // The certificate is deployed and announced: a store failing only at the release (its
        // directory deleted, say) must not turn that into a renewalFailed after `obtained`.
        onReleaseError: (error) =>
          options.logger.warn('releasing the issue lock failed; it lapses by itself', {
            id: cert.id,
            error: describeCause(error),
          }),
      },
    );
    // A deploy recorded its success itself, before its events; an adoption is recorded here.
    if (adopted) succeeded(state);
    // Only now: the swap is verified and announced (deploy.ts), which is what ready() promises.
    state.ready.resolve();
    return undefined;
  } catch (error) {
    if (core.stopped())
      return new CertkeeperError('MANAGER_STOPPED', `the manager stopped while obtaining "${cert.id}"`);
    const failure = asError(error);
    recordFailure(core, state, failure, attemptNo);
    return failure;
  }
}

export function succeeded(state: CertState): void {
  state.failures = 0;
  state.lastError = undefined;
  state.blocked = undefined;
  state.retryAt = undefined;
  state.retryFor = undefined;
}

/**
 * The issuer as the attempt sees it, with every call it makes recorded in `lingering` until it
 * settles: the attempt stops waiting when it is given up, the issuer's clean-up may not have.
 */
function tracked(caps: IssuerCapabilities, lingering: Set<Promise<unknown>>): IssuerCapabilities {
  const track = <T>(call: () => Promise<T>): Promise<T> => {
    const work = (async () => call())();
    lingering.add(work);
    const done = () => lingering.delete(work);
    work.then(done, done);
    return work;
  };
  const { issuer, renewer, anchors } = caps;
  return {
    ...caps,
    issuer: { id: issuer.id, issue: (request, context) => track(() => issuer.issue(request, context)) },
    renewer: renewer && { renew: (request, context) => track(() => renewer.renew(request, context)) },
    anchors: anchors && { trustAnchors: (context) => track(() => anchors.trustAnchors(context)) },
  };
}

/** Counts the failure, sets when to retry, logs it and emits `renewalFailed`. */
function recordFailure(
  core: ManagerCore,
  state: CertState,
  failure: CertkeeperError,
  attemptNo: number,
): void {
  const { options } = core;
  state.failures++;
  state.lastError = failure;
  state.blocked = isRetryable(failure) ? undefined : failure;
  const now = options.clock.now();
  const facts = servedFacts(state);
  // A CA's Retry-After (rate limits, maintenance) is a floor: never come back sooner. An error
  // that retrying cannot fix (a spent token) waits the longest backoff: only a change of input
  // helps. Both are bounded by the lifetime left: whatever the CA says, the retry comes before expiry.
  state.retryAt =
    now +
    failureRetryDelay(state.failures, now, facts?.notAfter.getTime(), options.policy, {
      ...failure.details,
      retryable: isRetryable(failure),
    });
  state.retryFor = facts?.fingerprint256 ?? null;
  options.logger.warn('obtaining a certificate failed', {
    id: state.cert.id,
    code: failure.code,
    error: failure.message,
    retryAt: new Date(state.retryAt).toISOString(),
  });
  core.emit('renewalFailed', {
    id: state.cert.id,
    error: failure,
    attempt: attemptNo,
    retryAt: new Date(state.retryAt),
    servingSerial: facts?.serial ?? null,
  });
}
