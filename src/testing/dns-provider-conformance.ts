/**
 * The `DnsProvider` conformance suite: one call proves a DNS host's adapter keeps the contract
 * in `challenges/dns-01.ts`, checked with real DNS queries (node:dns `Resolver`) at the servers
 * the factory names: a value set is visible, values at one name coexist, a removal removes
 * exactly its value, repeats are harmless, failures are typed.
 *
 * ```ts
 * import { runDnsProviderConformance } from 'certkeeper/testing';
 * await runDnsProviderConformance('CloudflareProvider', () => ({
 *   provider: new CloudflareProvider({ token: process.env.CF_TOKEN! }),
 *   zone: 'acme-test.example.com',
 *   resolvers: ['ns1.cloudflare.com'],
 *   broken: () => new CloudflareProvider({ token: 'revoked' }),
 * }), { propagationMs: 60_000 });
 * ```
 *
 * Like `runStoreConformance`, it registers vitest tests (vitest is loaded with a dynamic `import()`).
 */
import { Resolver } from 'node:dns/promises';
import type { TestContext } from 'vitest';
import type { DnsProvider } from '../challenges/dns-01.js';
import { eventually, expectNone, failureProblems, freshLabel, freshToken, within } from './kit-support.js';

/** A provider for `runDnsProviderConformance`, with its zone and the servers answering for it. */
export interface DnsProviderUnderTest {
  provider: DnsProvider;
  /** A zone the provider may write: the suite writes TXT records at `_acme-challenge.<random>.<zone>`. */
  zone: string;
  /** DNS servers (`host` or `host:port`) answering for the zone; the suite queries them. */
  resolvers: string[];
  /** A provider of the same kind whose API fails (unreachable, refused credentials). */
  broken?(): DnsProvider | Promise<DnsProvider>;
  /** Runs after the test. */
  cleanup?(): void | Promise<void>;
}

/** Called before every test. */
export type DnsProviderFactory = () => DnsProviderUnderTest | Promise<DnsProviderUnderTest>;

/** Options of `runDnsProviderConformance`. */
export interface DnsProviderConformanceOptions {
  /** How long a change may take to show at the resolvers. Default 10 000 ms. */
  propagationMs?: number;
  /** How long a failing call may take to reject. Default 10 000 ms. */
  promptMs?: number;
  /** Timeout of each test. Default 60 000 ms. */
  timeoutMs?: number;
}

export async function runDnsProviderConformance(
  name: string,
  factory: DnsProviderFactory,
  options: DnsProviderConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, beforeEach, afterEach } = await import('vitest');
  const propagation = options.propagationMs ?? 10_000;
  const prompt = options.promptMs ?? 10_000;
  const timeout = options.timeoutMs ?? 60_000;

  describe(`DnsProvider conformance: ${name}`, () => {
    let sut: DnsProviderUnderTest;
    /** Records the test set, removed afterwards whatever happened. */
    let written: [string, string][];

    beforeEach(async () => {
      sut = await factory();
      written = [];
    });
    afterEach(async () => {
      for (const [fqdn, value] of written) await sut.provider.removeTxt(fqdn, value).catch(() => {});
      await sut?.cleanup?.();
    });

    const test = (title: string, body: (t: TestContext) => unknown) => it(title, { timeout }, body);
    const fqdn = () => `_acme-challenge.${freshLabel()}.${sut.zone}`;
    /** A value shaped like a DNS-01 answer (43 base64url characters). */
    const value = () => freshToken().slice(0, 43);

    async function set(name: string, text: string): Promise<void> {
      written.push([name, text]);
      await sut.provider.setTxt(name, text);
    }

    /** The TXT values at `name`, as the resolvers answer now ([] for no record). */
    async function txt(name: string): Promise<string[]> {
      const resolver = new Resolver({ timeout: 2_000, tries: 2 });
      resolver.setServers(sut.resolvers);
      try {
        return (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')).sort();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENODATA' || code === 'ENOTFOUND') return [];
        throw error;
      }
    }

    /** Waits until the set of values at `name` is `expected`; fails naming what was seen. */
    async function expectValues(name: string, expected: string[]): Promise<void> {
      const wanted = [...new Set(expected)].sort();
      let seen: string[] = [];
      await eventually(async () => {
        seen = [...new Set(await txt(name))].sort();
        return JSON.stringify(seen) === JSON.stringify(wanted);
      }, propagation);
      expect(seen, `TXT ${name} at ${sut.resolvers.join(', ')}`).toEqual(wanted);
    }

    test('setTxt makes the value visible to a resolver; removeTxt takes it away', async () => {
      const name = fqdn();
      const v = value();
      await set(name, v);
      await expectValues(name, [v]);
      await sut.provider.removeTxt(name, v);
      await expectValues(name, []);
    });

    test('several values at one name coexist, and removeTxt removes exactly its value', async () => {
      const name = fqdn();
      const [a, b, c] = [value(), value(), value()];
      await set(name, a);
      await set(name, b);
      await set(name, c);
      await expectValues(name, [a, b, c]);
      await sut.provider.removeTxt(name, b);
      await expectValues(name, [a, c]);
      await sut.provider.removeTxt(name, a);
      await sut.provider.removeTxt(name, c);
      await expectValues(name, []);
    });

    test('values at other names are untouched by a removal', async () => {
      const [first, second] = [fqdn(), fqdn()];
      const [a, b] = [value(), value()];
      await set(first, a);
      await set(second, b);
      await sut.provider.removeTxt(first, a);
      await expectValues(first, []);
      await expectValues(second, [b]);
    });

    test('setTxt of a value already set is harmless, and one removeTxt removes it', async () => {
      const name = fqdn();
      const [v, other] = [value(), value()];
      await set(name, other);
      await set(name, v);
      await set(name, v);
      await expectValues(name, [other, v]);
      await sut.provider.removeTxt(name, v);
      await expectValues(name, [other]);
    });

    test('removeTxt of a value never set, or twice, resolves and leaves the other values', async () => {
      const name = fqdn();
      const v = value();
      await set(name, v);
      await sut.provider.removeTxt(name, value());
      await sut.provider.removeTxt(fqdn(), value());
      await expectValues(name, [v]);
      await sut.provider.removeTxt(name, v);
      await sut.provider.removeTxt(name, v);
      await expectValues(name, []);
    });

    test('a failing API: setTxt and removeTxt reject promptly with a CertkeeperError without secrets', async (t) => {
      if (!sut.broken) return t.skip('the factory has no broken()');
      const provider = await sut.broken();
      const name = fqdn();
      for (const call of [() => provider.setTxt(name, value()), () => provider.removeTxt(name, value())]) {
        const outcome = await within(call, prompt);
        expect(outcome.settled, `the call did not settle within ${prompt} ms`).toBe(true);
        expect(outcome.rejected, 'a failing API call resolved').toBe(true);
        expectNone('the failure', failureProblems(outcome.error));
      }
    });
  });
}
