/**
 * The `ChallengeSolver` conformance suite: one call proves a solver keeps the contract in
 * `challenges/solver.ts`. The suite plays the CA: it presents challenges, looks for the answers
 * where the factory says the CA would (an HTTP GET, a TLS connection offering `acme-tls/1`, a
 * TXT query), and checks that cleanup leaves neither an answer nor anything in the store.
 *
 * ```ts
 * import { runChallengeSolverConformance } from 'certkeeper/testing';
 * await runChallengeSolverConformance('Dns01Solver (Route 53)', () => ({
 *   solver: new Dns01Solver({ provider: route53, resolvers: ['ns-1.awsdns.com'] }),
 *   domain: 'acme-test.example.com',
 *   supports: { dns: true, wildcard: true, ip: false },
 *   reach: { dns: { servers: ['ns-1.awsdns.com'] } },
 * }));
 * ```
 *
 * Like `runStoreConformance`, it registers vitest tests (vitest is loaded with a dynamic `import()`).
 */
import type { TestContext } from 'vitest';
import { CHALLENGE_TYPES, type ChallengeSolver, type ChallengeTask } from '../challenges/solver.js';
import { systemClock } from '../clock.js';
import type { IssuerContext } from '../issuers/issuer.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/store.js';
import { type ChallengeReach, look } from './challenge-reach.js';
import {
  abortedSignal,
  eventually,
  expectNone,
  failureProblems,
  freshLabel,
  freshToken,
  keyMaterialProblems,
  recordingLogger,
  within,
} from './kit-support.js';

export type { ChallengeReach, Sighting } from './challenge-reach.js';

/** A solver for `runChallengeSolverConformance`, with where its answers can be looked at. */
export interface ChallengeSolverUnderTest {
  solver: ChallengeSolver;
  /** A DNS domain the CA would validate names of: the suite uses `<random>.<domain>`. */
  domain: string;
  /** An IP address to validate, when the solver answers for IP identifiers. */
  ip?: string;
  /** What `supports()` must answer for a DNS name, a wildcard and an IP address. */
  supports: { dns: boolean; wildcard: boolean; ip: boolean };
  /** Where the CA looks for the answers. */
  reach: ChallengeReach;
  /**
   * What the solver's context holds. Default: a fresh MemoryStore and the system clock. The logger
   * is wrapped: the suite reads every line (no key material) and passes it on.
   */
  context?: Partial<Omit<IssuerContext, 'signal'>>;
  /** Runs after the test (close listeners). */
  cleanup?(): void | Promise<void>;
}

/** Called before every test. */
export type ChallengeSolverFactory = () => ChallengeSolverUnderTest | Promise<ChallengeSolverUnderTest>;

/** Options of `runChallengeSolverConformance`. */
export interface ChallengeSolverConformanceOptions {
  /** How long an answer may take to disappear after cleanup (DNS caches). Default 10 000 ms. */
  settleMs?: number;
  /** How long `present` with an aborted signal may take to settle. Default 5000 ms. */
  promptMs?: number;
  /** Timeout of each test. Default 30 000 ms. */
  timeoutMs?: number;
}

type Kind = 'dns' | 'wildcard' | 'ip';

/** Every key and value of `store`, to compare before and after. */
async function snapshot(store: Store): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  for (const key of (await store.list('')).sort()) {
    const value = await store.get(key);
    entries[key] = value === null ? '<gone>' : Buffer.from(value).toString('base64');
  }
  return entries;
}

export async function runChallengeSolverConformance(
  name: string,
  factory: ChallengeSolverFactory,
  options: ChallengeSolverConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, beforeEach, afterEach } = await import('vitest');
  const settle = options.settleMs ?? 10_000;
  const prompt = options.promptMs ?? 5_000;
  const timeout = options.timeoutMs ?? 30_000;

  describe(`ChallengeSolver conformance: ${name}`, () => {
    let sut: ChallengeSolverUnderTest;
    let base: Omit<IssuerContext, 'signal'>;

    let log: ReturnType<typeof recordingLogger>;

    beforeEach(async () => {
      sut = await factory();
      log = recordingLogger(sut.context?.logger);
      base = { store: new MemoryStore(), clock: systemClock, ...sut.context, logger: log };
    });
    afterEach(async () => {
      await sut?.cleanup?.();
      expectNone('the solver logged', keyMaterialProblems('a log line', log.text()));
    });

    const test = (title: string, body: (t: TestContext) => unknown) => it(title, { timeout }, body);
    const context = (signal = new AbortController().signal): IssuerContext => ({ ...base, signal });

    function task(kind: Kind, base = `${freshLabel()}.${sut.domain}`): ChallengeTask {
      const token = freshToken();
      return {
        type: sut.solver.type,
        identifier: kind === 'ip' ? { type: 'ip', value: sut.ip! } : { type: 'dns', value: base },
        wildcard: kind === 'wildcard',
        token,
        keyAuthorization: `${token}.${freshToken().slice(0, 43)}`,
      };
    }

    /** The kinds the solver answers for (and the factory can name: an IP needs `ip`). */
    const answeredKinds = (): Kind[] =>
      (['dns', 'wildcard', 'ip'] as const).filter((k) => sut.supports[k] && (k !== 'ip' || sut.ip));

    /** The kind the generic tests use: a DNS name, unless the solver answers for none. */
    const first = (): Kind => answeredKinds()[0] ?? 'dns';

    async function expectAnswered(t: ChallengeTask): Promise<void> {
      const seen = await look(sut.reach, t);
      expect(seen.answered, `the CA finds no answer for ${t.identifier.value}: ${seen.why}`).toBe(true);
    }

    async function expectGone(t: ChallengeTask): Promise<void> {
      let last = await look(sut.reach, t);
      const gone = await eventually(async () => {
        last = await look(sut.reach, t);
        return !last.answered && last.residue.length === 0;
      }, settle);
      expect(gone, `an answer for ${t.identifier.value} is left after cleanup: ${last.why}`).toBe(true);
    }

    test('has one of the challenge types', () => {
      expect(CHALLENGE_TYPES).toContain(sut.solver.type);
    });

    test('supports() answers as declared for DNS names, wildcards and IP addresses, each time', () => {
      const cases = [
        ['dns', { type: 'dns', value: `${freshLabel()}.${sut.domain}` }, false],
        ['wildcard', { type: 'dns', value: `${freshLabel()}.${sut.domain}` }, true],
        ['ip', { type: 'ip', value: sut.ip ?? '192.0.2.1' }, false],
      ] as const;
      for (const [kind, identifier, wildcard] of cases) {
        for (const ctx of [undefined, context()]) {
          const answer = sut.solver.supports(identifier, wildcard, ctx);
          expect(answer, `supports() for ${kind}${ctx ? ' with a context' : ''}`).toBe(sut.supports[kind]);
        }
      }
    });

    test('unavailable() agrees with supports(): nothing where the solver answers, else a typed error', (t) => {
      const unavailable = sut.solver.unavailable?.bind(sut.solver);
      if (!unavailable) return t.skip('the solver has no unavailable()');
      for (const kind of ['dns', 'wildcard', 'ip'] as const) {
        const probe = task(kind === 'ip' && !sut.ip ? 'dns' : kind);
        const ctx = context();
        const why = unavailable(probe.identifier, probe.wildcard, ctx);
        if (sut.solver.supports(probe.identifier, probe.wildcard, ctx)) {
          expect(why, `unavailable() for a ${kind} the solver answers`).toBeUndefined();
        } else if (why !== undefined) {
          expectNone(`unavailable() for a ${kind}`, failureProblems(why));
        }
      }
    });

    test('present() makes each kind of answer reachable the way a CA reaches it; cleanup() takes it away and leaves the store as it was', async () => {
      const before = await snapshot(base.store);
      for (const kind of answeredKinds()) {
        const t = task(kind);
        await sut.solver.present(t, context());
        await expectAnswered(t);
        await sut.solver.cleanup(t, context());
        await expectGone(t);
      }
      expect(await snapshot(base.store), 'the store after present() and cleanup()').toEqual(before);
    });

    test('present() twice (the CA asks again) is harmless: answered, and one cleanup() removes it', async () => {
      const before = await snapshot(base.store);
      const t = task(first());
      await sut.solver.present(t, context());
      await sut.solver.present(t, context());
      await expectAnswered(t);
      await sut.solver.cleanup(t, context());
      await expectGone(t);
      expect(await snapshot(base.store), 'the store after cleanup()').toEqual(before);
    });

    test('cleanup() of a challenge never presented resolves and touches no other answer', async () => {
      const kept = task(first());
      await sut.solver.present(kept, context());
      const during = await snapshot(base.store);
      await sut.solver.cleanup(task(first()), context());
      expect(await snapshot(base.store), 'the store after cleanup() of a stranger').toEqual(during);
      await expectAnswered(kept);
      await sut.solver.cleanup(kept, context());
      await sut.solver.cleanup(kept, context()); // twice is harmless too
      await expectGone(kept);
    });

    test('two answers for one name at once (a wildcard and its base): cleanup() of one keeps the other', async (t) => {
      if (!sut.supports.wildcard || !sut.supports.dns) return t.skip('the solver does not answer wildcards');
      const name = `${freshLabel()}.${sut.domain}`;
      const plain = task('dns', name);
      const wild = task('wildcard', name);
      await Promise.all([sut.solver.present(plain, context()), sut.solver.present(wild, context())]);
      await expectAnswered(plain);
      await expectAnswered(wild);
      await sut.solver.cleanup(wild, context());
      await expectAnswered(plain);
      await sut.solver.cleanup(plain, context());
      await expectGone(plain);
    });

    test('present() with an aborted signal settles promptly, a rejection typed; cleanup() then leaves nothing', async () => {
      const before = await snapshot(base.store);
      const t = task(first());
      const outcome = await within(() => sut.solver.present(t, context(abortedSignal())), prompt);
      expect(outcome.settled, `present() did not settle within ${prompt} ms`).toBe(true);
      if (outcome.rejected) expectNone('the failure', failureProblems(outcome.error));
      await sut.solver.cleanup(t, context());
      await expectGone(t);
      expect(await snapshot(base.store), 'the store after cleanup()').toEqual(before);
    });
  });
}
