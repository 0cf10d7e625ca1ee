/**
 * The `TrustSource` conformance suite: one call proves a trust source keeps the contract written
 * in `trust/source.ts` (certificates only, stable answers, prompt abort, typed failures with no
 * key material, changes seen by `load` and reported by `watch`). A factory without `change` or
 * `break` skips those tests, visibly.
 *
 * ```ts
 * import { runTrustSourceConformance } from 'certkeeper/testing';
 * await runTrustSourceConformance('VaultTrustSource', async () => ({
 *   source: new VaultTrustSource({ path: 'pki/ca' }),
 *   expected: [rootFingerprint],
 *   change: async () => { await publish(otherRoot); return [otherFingerprint]; },
 *   break: async () => { await stopVault(); },
 * }));
 * ```
 *
 * Like `runStoreConformance`, it registers vitest tests (loaded with a dynamic `import()`).
 */
import { isCertkeeperError } from '../errors.js';
import { makeBundle } from '../trust/bundle.js';
import type { TrustSource } from '../trust/source.js';

/** A trust source for `runTrustSourceConformance`, with what it holds and how to change it. */
export interface TrustSourceUnderTest {
  source: TrustSource;
  /** Lowercase hex SHA-256 fingerprints of the anchors the source holds now. */
  expected: readonly string[];
  /** Changes what the source holds; resolves with the fingerprints it holds afterwards. */
  change?: () => Promise<readonly string[]>;
  /** Makes the following loads fail (the peer down, the file garbage). */
  break?: () => Promise<void>;
  /** Runs after the test (stop servers, remove files). */
  cleanup?: () => void | Promise<void>;
}

/** Makes a fresh trust source for each test of `runTrustSourceConformance`. */
export type TrustSourceFactory = () => TrustSourceUnderTest | Promise<TrustSourceUnderTest>;

/** Options of `runTrustSourceConformance`. */
export interface TrustSourceConformanceOptions {
  /** How long `watch` may take to report a change. Default 5000 ms. */
  watchTimeoutMs?: number;
  /** Timeout of each test. Default 15 000 ms. */
  timeoutMs?: number;
}

const KEY_MATERIAL = /PRIVATE KEY|"d"\s*:/;

function fingerprintsOf(pems: readonly string[]): readonly string[] {
  return makeBundle(pems, 1).fingerprints;
}

export async function runTrustSourceConformance(
  name: string,
  factory: TrustSourceFactory,
  options: TrustSourceConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, afterEach } = await import('vitest');
  const watchTimeout = options.watchTimeoutMs ?? 5_000;
  const timeout = options.timeoutMs ?? 15_000;
  let current: TrustSourceUnderTest | undefined;
  const setUp = async () => {
    current = await factory();
    return current;
  };
  const sorted = (list: readonly string[]) => [...list].map((f) => f.toLowerCase()).sort();

  describe(`TrustSource conformance: ${name}`, () => {
    afterEach(async () => {
      await current?.cleanup?.();
      current = undefined;
    });

    it('has a non-empty name', async () => {
      const { source } = await setUp();
      expect(typeof source.name).toBe('string');
      expect(source.name.length).toBeGreaterThan(0);
    });

    it('load resolves with certificates only, the expected ones, and no key material', {
      timeout,
    }, async () => {
      const { source, expected } = await setUp();
      const pems = await source.load(new AbortController().signal);
      expect(Array.isArray(pems)).toBe(true);
      for (const pem of pems) expect(pem).not.toMatch(KEY_MATERIAL);
      expect(sorted(fingerprintsOf(pems))).toEqual(sorted(expected));
    });

    it('repeated loads give the same anchors', { timeout }, async () => {
      const { source } = await setUp();
      const first = fingerprintsOf(await source.load(new AbortController().signal));
      const second = fingerprintsOf(await source.load(new AbortController().signal));
      expect(second).toEqual(first);
    });

    it('a load with an aborted signal settles promptly', { timeout }, async () => {
      const { source } = await setUp();
      const controller = new AbortController();
      controller.abort();
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        source.load(controller.signal).then(
          () => 'settled',
          () => 'settled',
        ),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve('hung'), 5_000);
        }),
      ]);
      clearTimeout(timer);
      expect(outcome).toBe('settled');
    });

    it('a change is seen by the next load, and reported by watch when the source has one', {
      timeout,
    }, async (context) => {
      const sut = await setUp();
      if (!sut.change) return context.skip('the factory has no change()');
      let reported = 0;
      const unwatch = sut.source.watch?.(() => reported++);
      try {
        const after = await sut.change();
        expect(sorted(fingerprintsOf(await sut.source.load(new AbortController().signal)))).toEqual(
          sorted(after),
        );
        if (unwatch) {
          const deadline = Date.now() + watchTimeout;
          while (reported === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
          expect(reported, 'watch() never reported the change').toBeGreaterThan(0);
        }
      } finally {
        unwatch?.();
        unwatch?.(); // stopping twice is harmless
      }
    });

    it('a failing source rejects with a CertkeeperError without key material, or yields text the store refuses', {
      timeout,
    }, async (context) => {
      const sut = await setUp();
      if (!sut.break) return context.skip('the factory has no break()');
      await sut.break();
      const outcome = await sut.source.load(new AbortController().signal).then(
        (pems) => ({ pems }),
        (error: unknown) => ({ error }),
      );
      if ('error' in outcome) {
        expect(isCertkeeperError(outcome.error)).toBe(true);
        const text = JSON.stringify({
          message: (outcome.error as Error).message,
          details: (outcome.error as { details?: unknown }).details,
        });
        expect(text).not.toMatch(KEY_MATERIAL);
      } else {
        // Passing the raw text on is allowed (the store parses it and keeps the last good
        // bundle); a failure must never look like a valid, different set of anchors.
        expect(() => fingerprintsOf(outcome.pems), 'a broken source returned a valid bundle').toThrow();
      }
    });
  });
}
