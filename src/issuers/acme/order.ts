/**
 * One ACME order, start to finish: new order → authorizations → challenges → finalize →
 * download. Waiting is polling that adds little to the CA's own time: a result is seen within
 * `intervalMs` (250 ms) of the CA finishing for as long as a CA usually takes (5 s), and the
 * delay then grows, so an order makes no more requests in its first minute than a 25 ms → 2 s
 * doubling schedule did (34 against 35), and far fewer afterwards. A Retry-After from the CA
 * always wins over our own delay. acme-client's default (5 s minimum) would turn a 60 ms
 * issuance into 5 s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { untilAborted } from '../../abort.js';
import type { ChallengeSolver, ChallengeTask, ChallengeType } from '../../challenges/solver.js';
import { CertkeeperError, describeCause } from '../../errors.js';
import type { IssuerContext } from '../issuer.js';
import type { AcmeClient } from './account.js';
import { challengeRetryable } from './problems.js';
import { parseRetryAfter } from './transport.js';

/** How an order and its authorizations are polled while the CA works on them. */
export interface PollOptions {
  /** The first delay (default 25 ms); delays then follow the time already waited (doubling). */
  initialMs: number;
  /** The longest delay while the CA is expected to finish (default 250 ms). */
  intervalMs: number;
  /** How long the delay stays at most `intervalMs` (default 5 s). */
  intervalForMs: number;
  /** Past `intervalForMs`, the delay grows by 3/4 of the time past it, up to this (default 10 s). */
  maxMs: number;
  /** A Retry-After longer than this ends the attempt; the lifecycle retries after it. */
  maxRetryAfterMs: number;
}

export const DEFAULT_POLL: PollOptions = {
  initialMs: 25,
  intervalMs: 250,
  intervalForMs: 5_000,
  maxMs: 10_000,
  maxRetryAfterMs: 120_000,
};

/** Our own delay before the next poll, `elapsedMs` after polling this object began. */
export function pollDelay(elapsedMs: number, poll: PollOptions): number {
  if (elapsedMs < poll.intervalForMs) return Math.min(Math.max(elapsedMs, poll.initialMs), poll.intervalMs);
  return Math.min(poll.intervalMs + (elapsedMs - poll.intervalForMs) * 0.75, poll.maxMs);
}

/** How long a solver's cleanup (removing a DNS record, …) may take once the order is over. */
export const CLEANUP_TIMEOUT_MS = 10_000;

function givenUp(type: string, name: string, step: 'present' | 'cleanup' = 'present'): CertkeeperError {
  return new CertkeeperError(
    'CHALLENGE_FAILED',
    `${type} ${step} for ${name} did not finish ${step === 'present' ? 'before the attempt was given up' : `within ${CLEANUP_TIMEOUT_MS} ms`}`,
    { details: { identifier: name, challenge: type, step } },
  );
}

interface AcmeObject {
  status: string;
  url?: string;
  [key: string]: unknown;
}

/**
 * Polls `url` (POST-as-GET) until its status leaves `pending`/`processing`. `pause` is the wait
 * (tests measure the schedule with one that only counts).
 */
export async function pollStatus<T extends AcmeObject>(
  client: AcmeClient,
  url: string,
  signal: AbortSignal,
  poll: PollOptions,
  /** `now`: the first poll goes out at once (the object is expected to have moved already). */
  first?: { retryAfterMs?: number; now?: boolean },
  pause: (ms: number, signal: AbortSignal) => Promise<unknown> = (ms, s) =>
    sleep(ms, undefined, { signal: s }),
): Promise<T> {
  // The schedule follows the time waited, so a long Retry-After moves it on as well.
  let elapsed = 0;
  // A Retry-After is honoured but never shorter than our own delay: a CA answering
  // `Retry-After: 0` on every poll must not turn polling into a busy loop.
  let wait = first?.now ? 0 : Math.max(first?.retryAfterMs ?? 0, pollDelay(elapsed, poll));
  for (;;) {
    if (wait > poll.maxRetryAfterMs) {
      throw new CertkeeperError(
        'RATE_LIMITED',
        `the CA asked to wait ${Math.round(wait / 1000)} s before polling ${url}`,
        {
          details: { retryAfterMs: wait, url },
        },
      );
    }
    await pause(wait, signal);
    elapsed += wait;
    const response = await client.api.apiRequest(url, null, [200]);
    const item = { ...(response.data as T), url };
    if (item.status !== 'pending' && item.status !== 'processing') return item;
    wait = Math.max(parseRetryAfter(response.headers['retry-after']) ?? 0, pollDelay(elapsed, poll));
  }
}

export interface Authorization extends AcmeObject {
  identifier: { type: 'dns' | 'ip'; value: string };
  wildcard?: boolean;
  challenges: {
    type: string;
    url: string;
    token: string;
    status: string;
    error?: { type?: string; detail?: string };
  }[];
}

export interface ChallengePlan {
  solvers: ChallengeSolver[];
  /** Types that failed recently for an identifier: tried last, so the next order falls back. */
  recentlyFailed(identifier: string, type: ChallengeType): boolean;
  markFailed(identifier: string, type: ChallengeType): void;
}

function chooseSolver(
  authz: Authorization,
  plan: ChallengePlan,
  context: IssuerContext,
): { solver: ChallengeSolver; challenge: Authorization['challenges'][0] } {
  const wildcard = authz.wildcard === true;
  const offered = new Map(authz.challenges.map((c) => [c.type, c]));
  const usable = plan.solvers.filter(
    (s) => offered.has(s.type) && s.supports(authz.identifier, wildcard, context),
  );
  const fresh = usable.filter((s) => !plan.recentlyFailed(authz.identifier.value, s.type));
  const solver = fresh[0] ?? usable[0];
  if (!solver) {
    // A solver that could answer but not now (TLS-ALPN-01 before a server listens) says what to do.
    for (const s of plan.solvers) {
      const why = offered.has(s.type) ? s.unavailable?.(authz.identifier, wildcard, context) : undefined;
      if (why) throw why;
    }
    throw new CertkeeperError(
      'CHALLENGE_FAILED',
      `no configured challenge solver can answer for ${wildcard ? '*.' : ''}${authz.identifier.value} (CA offers ${[...offered.keys()].join(', ')})`,
      { details: { identifier: authz.identifier.value, offered: [...offered.keys()] } },
    );
  }
  return { solver, challenge: offered.get(solver.type)! };
}

/** Solves one pending authorization; the answer is always removed afterwards. Resolves with the challenge type that answered. */
export async function solveAuthorization(
  client: AcmeClient,
  authz: Authorization,
  plan: ChallengePlan,
  context: IssuerContext,
  poll: PollOptions,
): Promise<ChallengeType> {
  const { solver, challenge } = chooseSolver(authz, plan, context);
  // acme-client derives the raw key authorization for http-01; TLS-ALPN-01 and DNS-01 hash it.
  const keyAuthorization = await client.getChallengeKeyAuthorization({
    ...challenge,
    type: 'http-01',
  } as never);
  const task: ChallengeTask = {
    type: solver.type,
    identifier: authz.identifier,
    wildcard: authz.wildcard === true,
    token: challenge.token,
    keyAuthorization,
  };
  const name = `${task.wildcard ? '*.' : ''}${authz.identifier.value}`;
  try {
    await untilAborted(solver.present(task, context), context.signal, () => givenUp(solver.type, name));
    const response = await client.api.apiRequest(challenge.url, {}, [200]);
    const result = await pollStatus<Authorization>(client, authz.url!, context.signal, poll, {
      retryAfterMs: parseRetryAfter(response.headers['retry-after']),
    });
    if (result.status !== 'valid') {
      plan.markFailed(authz.identifier.value, solver.type);
      const failed = result.challenges.find((c) => c.type === solver.type)?.error;
      throw new CertkeeperError(
        'CHALLENGE_FAILED',
        `${solver.type} for ${name} failed: ${failed?.detail ?? `authorization ${result.status}`}`.slice(
          0,
          600,
        ),
        {
          details: {
            identifier: name,
            challenge: solver.type,
            type: failed?.type,
            detail: failed?.detail,
            ...(challengeRetryable(failed?.type) ? {} : { retryable: false }),
          },
        },
      );
    }
    return solver.type;
  } finally {
    // Cleanup runs however the attempt ended, given up included: with a bounded signal of its own.
    const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    await untilAborted(solver.cleanup(task, { ...context, signal }), signal, () =>
      givenUp(solver.type, name, 'cleanup'),
    ).catch((error) => {
      context.logger.warn('challenge cleanup failed', {
        identifier: name,
        challenge: solver.type,
        error: describeCause(error),
      });
    });
  }
}
