/**
 * The deploy path over targets (target.ts): apply a new generation to every target that serves
 * the certificate, then verify every one; if any apply or verify failed, roll back to the previous
 * generation. Which targets go back is the rollback policy:
 *   - `'all'` (default): every target serving the certificate, so the fleet never serves two
 *     generations of one certificate because one target refused;
 *   - `'target'`: only the targets that failed; the others keep the new generation.
 * With no previous generation (a first issuance) nothing is rolled back: there is nothing older
 * to serve, and the caller reports the failure.
 *
 * No target decides on its own: this function is the only caller of `apply`, `verify` and
 * `rollback` during a deploy. It throws nothing; what happened is in the result.
 */
import { CertkeeperError, describeCause, isCertkeeperError } from '../errors.js';
import type { DeployableGeneration, DeployTarget, LiveCheck } from './target.js';

export type RollbackPolicy = 'all' | 'target';
export const ROLLBACK_POLICIES: readonly RollbackPolicy[] = ['all', 'target'];

/** One target that did not take the generation. */
export interface DeployFailure {
  readonly target: string;
  readonly stage: 'apply' | 'verify';
  readonly error: CertkeeperError;
}

export interface DeployResult {
  /** Names of the targets serving the certificate. */
  readonly targets: readonly string[];
  /** Live checks that saw the new generation (targets with nothing to check are absent). */
  readonly checks: readonly LiveCheck[];
  /** Empty when every target took the generation. */
  readonly failures: readonly DeployFailure[];
  /** Targets put back to the previous generation. */
  readonly rolledBack: readonly string[];
  /** Rollbacks that failed themselves (the target may serve either generation). */
  readonly rollbackFailures: readonly DeployFailure[];
  /** Targets serving the new generation once the deploy is over. */
  readonly serving: readonly string[];
  /** Apply and verify, by the caller's clock: ms. */
  readonly durationMs: number;
}

export interface DeployOptions {
  rollback: RollbackPolicy;
  signal: AbortSignal;
  now(): number;
}

/** Applies `generation` for `id` to every target that serves it, verifies each, rolls back on failure. */
export async function deploy(
  targets: Iterable<DeployTarget>,
  id: string,
  generation: DeployableGeneration,
  previous: DeployableGeneration | null,
  options: DeployOptions,
): Promise<DeployResult> {
  const started = options.now();
  const serving = [...targets].filter((t) => t.serves(id));
  const failures: DeployFailure[] = [];
  const applied = await Promise.allSettled(serving.map((t) => t.apply(id, generation, options.signal)));
  const verifying = serving.filter((t, i) => {
    const outcome = applied[i]!;
    if (outcome.status === 'fulfilled') return true;
    failures.push({ target: t.name, stage: 'apply', error: deployError(t, 'apply', outcome.reason) });
    return false;
  });
  const verified = await Promise.allSettled(verifying.map((t) => t.verify(id, generation, options.signal)));
  const checks: LiveCheck[] = [];
  verifying.forEach((t, i) => {
    const outcome = verified[i]!;
    if (outcome.status === 'rejected')
      failures.push({ target: t.name, stage: 'verify', error: deployError(t, 'verify', outcome.reason) });
    else if (outcome.value) checks.push(outcome.value);
  });
  const durationMs = options.now() - started;
  const names = serving.map((t) => t.name);
  if (failures.length === 0 || previous === null) {
    const failed = new Set(failures.map((f) => f.target));
    return {
      targets: names,
      checks,
      failures,
      rolledBack: [],
      rollbackFailures: [],
      serving: names.filter((n) => !failed.has(n)),
      durationMs,
    };
  }
  const failed = new Set(failures.map((f) => f.target));
  const back = options.rollback === 'all' ? serving : serving.filter((t) => failed.has(t.name));
  // A rollback must run even when the attempt was given up: it restores what clients get.
  const rollbackSignal = AbortSignal.timeout(30_000);
  const undone = await Promise.allSettled(back.map((t) => t.rollback(id, previous, rollbackSignal)));
  const rollbackFailures: DeployFailure[] = [];
  undone.forEach((outcome, i) => {
    if (outcome.status === 'rejected') {
      const t = back[i]!;
      rollbackFailures.push({
        target: t.name,
        stage: 'apply',
        error: deployError(t, 'rollback', outcome.reason),
      });
    }
  });
  const wentBack = new Set(back.map((t) => t.name));
  return {
    targets: names,
    checks: checks.filter((c) => !wentBack.has(c.target)),
    failures,
    rolledBack: back.map((t) => t.name),
    rollbackFailures,
    serving: names.filter((n) => !wentBack.has(n)),
    durationMs,
  };
}

/** A target's own typed error as it is; anything else becomes DEPLOY_FAILED naming the target. */
function deployError(target: DeployTarget, step: string, cause: unknown): CertkeeperError {
  if (isCertkeeperError(cause)) return cause;
  return new CertkeeperError(
    'DEPLOY_FAILED',
    `target ${target.name}: ${step} failed: ${describeCause(cause)}`,
    {
      cause,
      details: { target: target.name, step },
    },
  );
}
