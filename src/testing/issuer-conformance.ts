/**
 * The `Issuer` conformance suite: one call proves an issuer keeps the contract in
 * `issuers/issuer.ts`, what every issuer must do and what each optional ability must do when the
 * issuer has it (abilities are detected by their methods; an absent one skips its test, visibly).
 *
 * ```ts
 * import { runIssuerConformance } from 'certkeeper/testing';
 * await runIssuerConformance('VaultIssuer', async () => ({
 *   issuer: new VaultIssuer({ url, role: 'web' }),
 *   domain: 'svc.internal',           // names asked for: <random>.svc.internal, *.<random>.svc.internal
 *   wildcard: true,
 *   ip: '10.0.0.7',
 *   isRevoked: (serial) => vault.isRevoked(serial),
 *   unreachable: () => new VaultIssuer({ url: 'https://127.0.0.1:9', role: 'web' }),
 * }));
 * ```
 *
 * Like `runStoreConformance`, it registers vitest tests (vitest is loaded with a dynamic `import()`).
 */
import type { TestContext } from 'vitest';
import { CHALLENGE_TYPES } from '../challenges/solver.js';
import { type Clock, systemClock } from '../clock.js';
import type { KeyType, PrivateKey } from '../crypto/keys.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
} from '../issuers/issuer.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/store.js';
import {
  anchorProblems,
  issuedKey,
  issuedProblems,
  makeRequest as newRequest,
  withBrokenCsr,
} from './issuer-checks.js';
import {
  abortedSignal,
  expectNone,
  failureProblems,
  freshLabel,
  keyMaterialProblems,
  recordingLogger,
  within,
} from './kit-support.js';

/** An issuer for `runIssuerConformance`, with what its CA issues. */
export interface IssuerUnderTest {
  issuer: Issuer;
  /** A DNS domain the CA issues under: the suite asks for `<random>.<domain>` names. */
  domain: string;
  /** The CA issues wildcards (`*.<random>.<domain>`). Default false: not asked for. */
  wildcard?: boolean;
  /** An IP address the CA issues for. Default: none asked for. */
  ip?: string;
  /** Key types to ask for. Default `['ec-p256']`. */
  keyTypes?: KeyType[];
  /**
   * What the issuer gets in its context. Default: a fresh MemoryStore and the system clock. The
   * logger is wrapped: the suite reads every line (no key material) and passes it on.
   */
  context?: Partial<Omit<IssuerContext, 'signal'>>;
  /** One issuer may run several issuances at once. Default true (false skips that test). */
  concurrent?: boolean;
  /** Runs before each `issue` / `renew` of the suite (mint a one-time token for `request.names`). */
  prepare?(request: CertificateRequest): void | Promise<void>;
  /** Whether the CA lists this serial (lowercase hex) as revoked: enables that check after `revoke`. */
  isRevoked?(serialHex: string): Promise<boolean>;
  /** An issuer of the same kind whose CA cannot be reached (its failures must be typed too). */
  unreachable?(): Issuer | Promise<Issuer>;
  /** Runs after the test (the suite closes the issuer first when it has `close`). */
  cleanup?(): void | Promise<void>;
}

/** Called before every test. */
export type IssuerFactory = () => IssuerUnderTest | Promise<IssuerUnderTest>;

/** Options of `runIssuerConformance`. */
export interface IssuerConformanceOptions {
  /** How long an aborted or unreachable call may take to reject. Default 5000 ms. */
  promptMs?: number;
  /** Timeout of each test. Default 60 000 ms (an ACME order validates challenges). */
  timeoutMs?: number;
}

/** `store`, calling `trip` once, at the first call of any of its methods. */
function onFirstCall(store: Store, trip: () => void): Store {
  let tripped = false;
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (!tripped) {
          tripped = true;
          trip();
        }
        return value.apply(target, args);
      };
    },
  });
}

type Renewal = CertificateRequest & { current: NonNullable<CertificateRequest['current']> };

export async function runIssuerConformance(
  name: string,
  factory: IssuerFactory,
  options: IssuerConformanceOptions = {},
): Promise<void> {
  const { describe, it, expect, beforeEach, afterEach } = await import('vitest');
  const prompt = options.promptMs ?? 5_000;
  const timeout = options.timeoutMs ?? 60_000;

  describe(`Issuer conformance: ${name}`, () => {
    let sut: IssuerUnderTest;
    let base: Omit<IssuerContext, 'signal'>;
    let clock: Clock;
    let log: ReturnType<typeof recordingLogger>;
    /** Every key of the test's requests: none may show in a log line. */
    let keys: PrivateKey[];

    beforeEach(async () => {
      sut = await factory();
      clock = sut.context?.clock ?? systemClock;
      log = recordingLogger(sut.context?.logger);
      keys = [];
      base = { store: new MemoryStore(), clock, ...sut.context, logger: log };
    });
    afterEach(async () => {
      await sut?.issuer.close?.();
      await sut?.cleanup?.();
      expectNone('the issuer logged', keyMaterialProblems('a log line', log.text(), keys));
    });

    const makeRequest: typeof newRequest = async (...args) => {
      const request = await newRequest(...args);
      keys.push(request.key);
      return request;
    };

    const test = (title: string, body: (t: TestContext) => unknown) => it(title, { timeout }, body);
    const context = (signal = new AbortController().signal): IssuerContext => ({ ...base, signal });
    const dnsName = () => `${freshLabel()}.${sut.domain}`;

    async function anchors(): Promise<string[]> {
      return sut.issuer.trustAnchors ? sut.issuer.trustAnchors(context()) : [];
    }

    async function issue(request: CertificateRequest, signal?: AbortSignal): Promise<IssuedCertificate> {
      await sut.prepare?.(request);
      return sut.issuer.issue(request, context(signal));
    }

    /** Issues `request` and checks the answer; resolves with what a renewal needs. */
    async function issueChecked(request: CertificateRequest) {
      const issued = await issue(request);
      const { problems, leaf } = issuedProblems(request, issued, await anchors(), clock.now());
      expectNone('the issued certificate', problems);
      return { issued, info: leaf!, key: issuedKey(request, issued) };
    }

    async function renewalOf(names: string[]): Promise<Renewal> {
      const first = await issueChecked(await makeRequest(names));
      const next = await makeRequest(names);
      return { ...next, current: { chainPem: first.issued.chainPem, key: first.key, info: first.info } };
    }

    function expectTypedFailure(error: unknown, request?: CertificateRequest): void {
      expectNone('the failure', failureProblems(error, request ? [request.key] : []));
    }

    // ---- issue --------------------------------------------------------------------------------

    test('has a non-empty id that does not change', () => {
      expect(typeof sut.issuer.id).toBe('string');
      expect(sut.issuer.id.length).toBeGreaterThan(0);
      expect(sut.issuer.id).toBe(sut.issuer.id);
    });

    test('challengeTypes, when listed, names challenge types only', (t) => {
      const types = sut.issuer.challengeTypes;
      if (types === undefined) return t.skip('the issuer lists no challengeTypes');
      expect(Array.isArray(types)).toBe(true);
      for (const type of types) expect(CHALLENGE_TYPES).toContain(type);
    });

    test('issue(): a chain, leaf first, for exactly the requested name and the request key, valid now', async () => {
      for (const keyType of sut.keyTypes ?? ['ec-p256']) {
        await issueChecked(await makeRequest([dnsName()], { keyType }));
      }
    });

    test('issue() for several names: DNS, and wildcard and IP where the CA issues them', async () => {
      const label = freshLabel();
      const names = [`${label}.${sut.domain}`, `${freshLabel()}.${sut.domain}`];
      if (sut.wildcard) names.push(`*.${label}.${sut.domain}`);
      if (sut.ip) names.push(sut.ip);
      await issueChecked(await makeRequest(names));
    });

    for (const purpose of ['server', 'client'] as const satisfies readonly CertificatePurpose[]) {
      test(`issue() for purpose '${purpose}' carries its extended key usage`, async (t) => {
        const supported = sut.issuer.supportsPurpose?.(purpose) ?? purpose === 'server';
        if (!supported) return t.skip(`the issuer does not issue for '${purpose}'`);
        await issueChecked(await makeRequest([dnsName()], { purpose }));
      });
    }

    test('issue() with an already aborted signal rejects promptly with a CertkeeperError, before and after a first issuance', async () => {
      // First on a cold issuer (no account, no CA state yet), then on a warm one: a cached state
      // must not let an aborted call through.
      for (const round of ['cold', 'warm']) {
        const request = await makeRequest([dnsName()]);
        const outcome = await within(() => issue(request, abortedSignal()), prompt);
        expect(outcome.settled, `${round}: issue() did not settle within ${prompt} ms`).toBe(true);
        expect(outcome.rejected, `${round}: issue() resolved although its signal was aborted`).toBe(true);
        expectTypedFailure(outcome.error, request);
        await issueChecked(await makeRequest([dnsName()])); // it works afterwards
      }
    });

    test('issue() whose signal is aborted at its first store access settles promptly; the issuer works afterwards', async () => {
      const request = await makeRequest([dnsName()]);
      await sut.prepare?.(request);
      const controller = new AbortController();
      const store = onFirstCall(base.store, () => controller.abort());
      const running = sut.issuer.issue(request, { ...context(controller.signal), store });
      const outcome = await within(() => running, prompt + 1_000);
      expect(outcome.settled, 'issue() did not settle after its signal was aborted').toBe(true);
      if (outcome.rejected) expectTypedFailure(outcome.error, request);
      await issueChecked(await makeRequest([dnsName()]));
    });

    test('concurrent issue() calls for different names each get their own certificate', async (t) => {
      if (sut.concurrent === false) return t.skip('the factory says one issuance at a time');
      const requests = await Promise.all([0, 1, 2].map(() => makeRequest([dnsName()])));
      for (const request of requests) await sut.prepare?.(request);
      const issued = await Promise.all(requests.map((r) => sut.issuer.issue(r, context())));
      const now = clock.now();
      const trusted = await anchors();
      for (const [i, request] of requests.entries()) {
        expectNone(request.names[0]!, issuedProblems(request, issued[i]!, trusted, now).problems);
      }
    });

    // Some CAs (Pebble) do not check a CSR's signature: they may issue, for the CSR's key only.
    test('a CSR with a broken signature: refused with a typed error, or certified for the request key only', async () => {
      const request = withBrokenCsr(await makeRequest([dnsName()]));
      const outcome = await within(() => issue(request), timeout - 1_000);
      expect(outcome.settled).toBe(true);
      if (outcome.rejected) return expectTypedFailure(outcome.error, request);
      const issued = outcome.value!;
      expect(issued.key, 'a key returned for a CSR the issuer could not trust').toBeUndefined();
      expectNone(
        'the issued certificate',
        issuedProblems(request, issued, await anchors(), clock.now()).problems,
      );
    });

    test('an unreachable CA: issue() rejects promptly with a CertkeeperError without key material', async (t) => {
      if (!sut.unreachable) return t.skip('the factory has no unreachable()');
      const issuer = await sut.unreachable();
      try {
        const request = await makeRequest([dnsName()]);
        await sut.prepare?.(request);
        const outcome = await within(() => issuer.issue(request, context()), prompt);
        expect(outcome.settled, `issue() did not settle within ${prompt} ms`).toBe(true);
        expect(outcome.rejected, 'issue() resolved against an unreachable CA').toBe(true);
        expectTypedFailure(outcome.error, request);
      } finally {
        await issuer.close?.();
      }
    });

    // ---- renewal ------------------------------------------------------------------------------

    test('issue() of a renewal (request.current set) gives a new serial for the same names', async () => {
      const renewal = await renewalOf([dnsName()]);
      const { info } = await issueChecked(renewal);
      expect(info.serialNumber, 'the renewed serial').not.toBe(renewal.current.info.serialNumber);
    });

    test('renew() gives a new serial for the same names, for the key it certifies', async (t) => {
      if (!sut.issuer.renew) return t.skip('the issuer has no renew()');
      const renewal = await renewalOf([dnsName()]);
      await sut.prepare?.(renewal);
      const renewed = await sut.issuer.renew(renewal, context());
      const { problems, leaf } = issuedProblems(renewal, renewed, await anchors(), clock.now());
      expectNone('the renewed certificate', problems);
      expect(leaf!.serialNumber, 'the renewed serial').not.toBe(renewal.current.info.serialNumber);
      const key = issuedKey(renewal, renewed);
      expect([renewal.key, renewal.current.key]).toContain(key);
    });

    test('renew() with an already aborted signal rejects promptly with a CertkeeperError', async (t) => {
      if (!sut.issuer.renew) return t.skip('the issuer has no renew()');
      const renewal = await renewalOf([dnsName()]);
      const outcome = await within(() => sut.issuer.renew!(renewal, context(abortedSignal())), prompt);
      expect(outcome.settled, `renew() did not settle within ${prompt} ms`).toBe(true);
      expect(outcome.rejected, 'renew() resolved although its signal was aborted').toBe(true);
      expectTypedFailure(outcome.error, renewal);
    });

    // ---- optional abilities -------------------------------------------------------------------

    test('revoke() leaves the issuer working, and the CA lists the serial when the factory can tell', async (t) => {
      if (!sut.issuer.revoke) return t.skip('the issuer has no revoke()');
      const request = await makeRequest([dnsName()]);
      const { issued, info, key } = await issueChecked(request);
      await sut.issuer.revoke({ chainPem: issued.chainPem, key }, 'keyCompromise', context());
      if (sut.isRevoked) expect(await sut.isRevoked(info.serialNumber), 'serial revoked').toBe(true);
      await issueChecked(await makeRequest([dnsName()]));
    });

    test('revoke() with an already aborted signal rejects promptly with a CertkeeperError and revokes nothing', async (t) => {
      if (!sut.issuer.revoke) return t.skip('the issuer has no revoke()');
      const request = await makeRequest([dnsName()]);
      const { issued, info, key } = await issueChecked(request);
      const outcome = await within(
        () => sut.issuer.revoke!({ chainPem: issued.chainPem, key }, 'superseded', context(abortedSignal())),
        prompt,
      );
      expect(outcome.settled, `revoke() did not settle within ${prompt} ms`).toBe(true);
      expect(outcome.rejected, 'revoke() resolved although its signal was aborted').toBe(true);
      expectTypedFailure(outcome.error, request);
      if (sut.isRevoked) expect(await sut.isRevoked(info.serialNumber), 'serial revoked').toBe(false);
    });

    test('renewalWindow() with an already aborted signal settles promptly, a rejection typed', async (t) => {
      if (!sut.issuer.renewalWindow) return t.skip('the issuer has no renewalWindow()');
      const request = await makeRequest([dnsName()]);
      const { issued, info } = await issueChecked(request);
      const outcome = await within(
        () => sut.issuer.renewalWindow!({ ...info, chainPem: issued.chainPem }, context(abortedSignal())),
        prompt,
      );
      expect(outcome.settled, `renewalWindow() did not settle within ${prompt} ms`).toBe(true);
      if (outcome.rejected) expectTypedFailure(outcome.error, request);
    });

    test('renewalWindow() is null or a window whose start is before its end', async (t) => {
      if (!sut.issuer.renewalWindow) return t.skip('the issuer has no renewalWindow()');
      const { issued, info } = await issueChecked(await makeRequest([dnsName()]));
      const window = await sut.issuer.renewalWindow({ ...info, chainPem: issued.chainPem }, context());
      if (window === null) return;
      expect(window.start).toBeInstanceOf(Date);
      expect(window.end).toBeInstanceOf(Date);
      expect(window.start.getTime()).toBeLessThan(window.end.getTime());
      if (window.refreshAt !== undefined) {
        expect(window.refreshAt).toBeInstanceOf(Date);
        expect(Number.isNaN(window.refreshAt.getTime())).toBe(false);
      }
    });

    test('trustAnchors() lists CA certificates only, the same ones each time', async (t) => {
      if (!sut.issuer.trustAnchors) return t.skip('the issuer has no trustAnchors()');
      const first = await sut.issuer.trustAnchors(context());
      expectNone('the anchors', anchorProblems(first));
      expect(await sut.issuer.trustAnchors(context())).toEqual(first);
    });

    test('supportsPurpose() answers a boolean for each purpose, the same each time', async (t) => {
      const supports = sut.issuer.supportsPurpose?.bind(sut.issuer);
      if (!supports) return t.skip('the issuer has no supportsPurpose()');
      for (const purpose of ['server', 'client'] as const) {
        expect(typeof supports(purpose)).toBe('boolean');
        expect(supports(purpose)).toBe(supports(purpose));
      }
    });

    test('bind() before the first issuance, twice, is harmless', async (t) => {
      if (!sut.issuer.bind) return t.skip('the issuer has no bind()');
      sut.issuer.bind({ store: base.store });
      sut.issuer.bind({ store: base.store, lockTtlMs: 30_000 });
      await issueChecked(await makeRequest([dnsName()]));
    });

    test('close() is asynchronous and may be called twice', async (t) => {
      if (!sut.issuer.close) return t.skip('the issuer has no close()');
      await issueChecked(await makeRequest([dnsName()]));
      const first = sut.issuer.close();
      expect(first).toBeInstanceOf(Promise);
      await first;
      await sut.issuer.close();
    });
  });
}
