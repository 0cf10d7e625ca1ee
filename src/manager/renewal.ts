/**
 * One renewal of one managed certificate, top to bottom:
 *
 *   1. lock        the store lock named for the certificate (store/with-lock.ts)
 *   2. re-check    another replica may have committed meanwhile: adopt that (adoption.ts)
 *   3. key, CSR    a fresh key and request
 *   4. issuer      the issuers in order: `renew` when it issued the current certificate and can
 *                  renew it (step-ca's mTLS renewal), else `issue`
 *   5. validate    parsed and checked against the issuer's trust anchors before anything is stored
 *   6. commit      generation files, then the pointer, fenced by the lock's token (records.ts)
 *   7. deploy      applied to every target serving it (deploy/deploy.ts)
 *   8. verify      each target's live check; a failure rolls every target, memory and the pointer
 *                  back to the previous certificate (never a revoked one)
 *   9. emit        swapped, then obtained or renewed
 *  10. failure     counted, the retry planned (policy.ts), `renewalFailed` emitted
 *
 * The certificate (managed-certificate.ts) is told each outcome through its methods; nothing
 * here calls back into the manager. Returns the failure, or undefined once a new certificate is
 * served (or adopted), for the callers that wait on it (renewNow, renewAll).
 */
import { untilAborted } from '../abort.js';
import { createCsr } from '../crypto/csr.js';
import { parseCertificates } from '../crypto/inspect.js';
import { PrivateKey } from '../crypto/keys.js';
import { deploy } from '../deploy/deploy.js';
import { CertkeeperError, describeCause, isRetryable } from '../errors.js';
import type { CertificateRequest, IssuerCapabilities, NameValidation } from '../issuers/issuer.js';
import { layout } from '../store/layout.js';
import type { LockLease } from '../store/store.js';
import { withLock } from '../store/with-lock.js';
import { adoptStored } from './adoption.js';
import type { ObtainReason } from './events.js';
import type { ManagedCertificate } from './managed-certificate.js';
import { failureRetryDelay } from './policy.js';
import { commitGeneration, type Generation, metaOf, revertPointer } from './records.js';
import { removeLegacy } from './repair.js';
import type { Runtime } from './runtime.js';
import { asError, servedFacts } from './status.js';

export async function renew(
  rt: Runtime,
  cert: ManagedCertificate,
  reason: ObtainReason,
): Promise<CertkeeperError | undefined> {
  const { config } = cert;
  const { options } = rt;
  const started = options.clock.now();
  rt.emit('obtaining', {
    id: config.id,
    names: [...config.names],
    reason,
    attempt: cert.plan.failures + 1,
  });
  const attemptNo = cert.beginAttempt();
  try {
    // The current certificate matters for renewal (ARI `replaces`, mTLS renew, rollback).
    if (!cert.current && cert.stored) await cert.materialize();
    const signal = AbortSignal.any([rt.signal, AbortSignal.timeout(options.issueTimeoutMs)]);
    let adopted = false;
    // 1. lock
    await withLock(
      options.store,
      layout.issueLock(config.id),
      async (lease, lockSignal) => {
        // 2. re-check: a forced renewal adopts only what was committed after it was asked for.
        if (await adoptStored(rt, cert, reason === 'forced' ? started : undefined)) {
          adopted = true;
          return;
        }
        // 3-5. key, CSR, issuer, validate
        const { generation, validation } = await issue(rt, cert, AbortSignal.any([signal, lockSignal]));
        // 6-9. commit, deploy, verify, emit (or roll back)
        await commitAndDeploy(rt, cert, generation, validation, started, { lease, signal: lockSignal });
      },
      {
        ttlMs: options.lockTtlMs,
        signal,
        // The certificate is deployed and announced: a store failing only at the release (its
        // directory deleted, say) must not turn that into a renewalFailed after `obtained`.
        onReleaseError: (error) =>
          options.logger.warn('releasing the issue lock failed; it lapses by itself', {
            id: config.id,
            error: describeCause(error),
          }),
      },
    );
    // A deploy recorded its success itself, before its events; an adoption is recorded here.
    if (adopted) cert.succeeded();
    // Only now: the swap is verified and announced, which is what ready() promises.
    cert.markReady();
    return undefined;
  } catch (error) {
    if (rt.stopped())
      return new CertkeeperError('MANAGER_STOPPED', `the manager stopped while obtaining "${config.id}"`);
    const failure = asError(error);
    recordFailure(rt, cert, failure, attemptNo);
    return failure;
  }
}

/** Steps 3-5: a fresh key and CSR, the issuers in order, the answer validated. */
async function issue(
  rt: Runtime,
  cert: ManagedCertificate,
  signal: AbortSignal,
): Promise<{ generation: Generation; validation: NameValidation[] }> {
  const { config, current } = cert;
  const { options } = rt;
  const key = await PrivateKey.generate(config.keyType);
  const csr = await createCsr({ key, names: config.names });
  let lastError: CertkeeperError | undefined;
  // An issuer whose CA just failed goes last for a while: the others are asked first.
  for (const issuerOf of rt.cooldowns.order(rt.issuersFor(config), (i) => i.id)) {
    const { issuer, renewer, anchors } = tracked(options.capabilities.get(issuerOf.id)!, rt);
    // Given up (time limit, stop, lost lock): the last issuer's error says why; no further issuer.
    if (signal.aborted) throw lastError ?? gaveUp(issuer.id, signal);
    const context = rt.context(signal);
    try {
      const request: CertificateRequest = {
        id: config.id,
        names: [...config.names],
        purpose: config.purpose,
        keyType: config.keyType,
        key,
        csr,
        ...(config.profile !== undefined ? { profile: config.profile } : {}),
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
        storedAt: options.clock.now(),
      };
      // An empty list means the issuer cannot say: chains are then checked for order only.
      const listed = anchors
        ? await untilAborted(anchors.trustAnchors(context), signal, () => gaveUp(issuer.id, signal))
        : [];
      const problem = rt.validate(config, generation, listed.length > 0 ? listed : undefined);
      if (problem) {
        rt.emit('rolledBack', {
          id: config.id,
          reason: problem,
          rejectedSerial: generation.info.serialNumber,
          servingSerial: cert.current?.info.serialNumber ?? null,
        });
        throw problem;
      }
      rt.cooldowns.succeeded(issuer.id);
      return { generation, validation: issued.validation ?? [] };
    } catch (error) {
      lastError = asError(error);
      options.logger.warn('issuer failed', {
        id: config.id,
        issuer: issuer.id,
        code: lastError.code,
        error: lastError.message,
      });
      const cooling = rt.cooldowns.failed(issuer.id, lastError);
      if (cooling)
        options.logger.warn('issuer cooling down: the other issuers are asked first', {
          issuer: issuer.id,
          failures: cooling.failures,
          until: new Date(cooling.until).toISOString(),
        });
    }
  }
  throw lastError ?? new CertkeeperError('ISSUER_FAILED', `no issuer can issue "${config.id}"`);
}

/**
 * Steps 6-9: store atomically (keeping the previous generation), make it current, apply it to
 * every target and verify each live; a failed check restores the previous certificate in
 * memory, on the targets and in the store (`rollback: 'all'`), and emits `liveVerifyFailed` and
 * `rolledBack`. A revoked certificate is never the previous one: not kept, never restored.
 */
async function commitAndDeploy(
  rt: Runtime,
  cert: ManagedCertificate,
  generation: Generation,
  validation: NameValidation[],
  started: number,
  lock: { lease: LockLease; signal: AbortSignal },
): Promise<void> {
  const { config } = cert;
  const { options } = rt;
  const { store, logger } = options;
  const revoked = cert.revoked;
  const replaced = cert.current;
  // A revoked certificate is no fallback: as if there were none.
  const previous = replaced && !revoked.has(replaced.info.serialNumber) ? replaced : undefined;
  const previousMeta = previous ? cert.currentMeta : undefined;
  const meta = metaOf(generation, config, options.clock.now());
  // `previous` must live under the same issuer directory to be found again for rollback.
  const sameIssuer = previousMeta && previousMeta.issuer === generation.issuer ? previousMeta : null;
  // 6. commit: a holder whose lease lapsed cannot overwrite the next holder's pointer.
  await commitGeneration(store, config.id, generation, meta, sameIssuer, {
    lease: lock.signal,
    fence: lock.lease,
    revoked,
    previousGeneration: previous,
  });
  cert.claimed();
  cert.install(generation, meta, 'deploy');

  // 7-8. deploy and verify on every target
  const result = await deploy(rt.allTargets(), config.id, generation, previous ?? null, {
    rollback: options.rollback,
    signal: rt.signal,
    now: () => options.clock.now(),
  });
  for (const rollbackFailure of result.rollbackFailures) {
    logger.error('rolling a deploy target back failed; it may serve either certificate', {
      id: config.id,
      target: rollbackFailure.target,
      code: rollbackFailure.error.code,
      error: rollbackFailure.error.message,
    });
  }
  const first = result.failures[0];
  if (first) {
    cert.setUnverified(generation.info.fingerprint256);
    for (const failure of result.failures) {
      rt.emit('liveVerifyFailed', {
        id: config.id,
        error: failure.error,
        expected: generation.info.fingerprint256,
        target: failure.target,
      });
    }
    const all = options.rollback === 'all';
    if (all && previous && previousMeta) {
      cert.install(previous, previousMeta, 'deploy');
      if (previous.issuer === generation.issuer)
        await revertPointer(store, previous.issuer, config.id, previousMeta, revoked, lock.lease);
    }
    rt.emit('rolledBack', {
      id: config.id,
      reason: first.error,
      rejectedSerial: generation.info.serialNumber,
      servingSerial: cert.current?.info.serialNumber ?? null,
      target: first.target,
      targets: [...result.rolledBack],
    });
    // Under 'target' the certificate stands where it was taken; without a previous one there
    // was nothing to go back to. Either way the failure is the attempt's.
    if (all || !previous) throw first.error;
  } else cert.setUnverified(undefined);
  // 9. emit. Status must already read "healthy" when listeners of these events look at it.
  const serial = generation.info.serialNumber;
  // This replica held the issuance lock for the order: it is the one named.
  const issuance = {
    at: new Date(options.clock.now()),
    serial,
    issuer: generation.issuer,
    replica: options.replicaId,
    validation,
  };
  cert.succeeded(issuance);
  rt.emit('swapped', {
    id: config.id,
    serial,
    previousSerial: replaced?.info.serialNumber ?? null,
    servers: result.serving.length,
    verified: result.checks.length,
    targets: [...result.serving],
    durationMs: result.durationMs,
  });
  const durationMs = options.clock.now() - started;
  const facts = {
    id: config.id,
    serial,
    notAfter: generation.info.notAfter,
    issuer: generation.issuer,
    durationMs,
    replica: options.replicaId,
    validation,
  };
  if (replaced) rt.emit('renewed', { ...facts, previousSerial: replaced.info.serialNumber });
  else rt.emit('obtained', facts);
  logger.info('certificate deployed', {
    id: config.id,
    serial,
    notAfter: generation.info.notAfter.toISOString(),
  });
  // Stored under its id now: what an earlier version kept under the first name goes.
  await removeLegacy(store, generation.issuer, config).catch((error) =>
    logger.debug('could not remove the first-name directory', { id: config.id, error: describeCause(error) }),
  );
}

/** Step 10: counts the failure, sets when to retry, logs it and emits `renewalFailed`. */
function recordFailure(
  rt: Runtime,
  cert: ManagedCertificate,
  failure: CertkeeperError,
  attemptNo: number,
): void {
  const { options } = rt;
  const now = options.clock.now();
  const facts = servedFacts(cert);
  const retryable = isRetryable(failure);
  // A CA's Retry-After (rate limits, maintenance) is a floor: never come back sooner. An error
  // that retrying cannot fix (a spent token) waits the longest backoff: only a change of input
  // helps. Both are bounded by the lifetime left: whatever the CA says, the retry comes before expiry.
  const retryAt =
    now +
    failureRetryDelay(cert.plan.failures + 1, now, facts?.notAfter.getTime(), options.policy, {
      ...failure.details,
      retryable,
    });
  cert.failed(failure, retryable, retryAt);
  options.logger.warn('obtaining a certificate failed', {
    id: cert.id,
    code: failure.code,
    error: failure.message,
    retryAt: new Date(retryAt).toISOString(),
  });
  rt.emit('renewalFailed', {
    id: cert.id,
    error: failure,
    attempt: attemptNo,
    retryAt: new Date(retryAt),
    servingSerial: facts?.serial ?? null,
  });
}

/**
 * The issuer as the attempt sees it, with every call it makes tracked until it settles: the
 * attempt stops waiting when it is given up, the issuer's clean-up may not have (stop() waits).
 */
function tracked(caps: IssuerCapabilities, rt: Runtime): IssuerCapabilities {
  const track = <T>(call: () => Promise<T>): Promise<T> => rt.track((async () => call())());
  const { issuer, renewer, anchors } = caps;
  return {
    ...caps,
    issuer: { id: issuer.id, issue: (request, context) => track(() => issuer.issue(request, context)) },
    renewer: renewer && { renew: (request, context) => track(() => renewer.renew(request, context)) },
    anchors: anchors && { trustAnchors: (context) => track(() => anchors.trustAnchors(context)) },
  };
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
