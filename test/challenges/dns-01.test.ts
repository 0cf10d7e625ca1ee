// Dns01Solver's propagation wait, against challtestsrv's real DNS server: an attempt given up
// while the record is not visible yet ends with a typed error, at once.
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dns01Solver, type DnsProvider } from '../../src/challenges/dns-01.js';
import type { ChallengeTask } from '../../src/challenges/solver.js';
import { systemClock } from '../../src/clock.js';
import { isCertkeeperError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { type Pebble, pebbleAvailable, startPebble } from '../support/pebble.js';

const task: ChallengeTask = {
  type: 'dns-01',
  identifier: { type: 'dns', value: 'never-visible.dns01.test' },
  wildcard: false,
  token: 'tok',
  keyAuthorization: 'tok.thumbprint',
};

(pebbleAvailable() || process.env.CI === 'true' ? describe : describe.skip)(
  'Dns01Solver propagation wait',
  () => {
    let pebble: Pebble;
    beforeAll(async () => {
      pebble = await startPebble({ startTimeoutMs: 30_000 }); // slow to start on a loaded machine
    }, 60_000);
    afterAll(() => pebble?.stop());

    it('an attempt aborted while the record is not visible rejects at once with a CertkeeperError', async () => {
      const controller = new AbortController();
      // A DNS host that accepts the record but never publishes it; the attempt is given up as the
      // record is handed over, so the solver notices while it waits for propagation.
      const provider: DnsProvider = {
        async setTxt() {
          controller.abort();
        },
        async removeTxt() {},
      };
      const solver = new Dns01Solver({
        provider,
        resolvers: [pebble.challtestsrv.dnsServer],
        pollIntervalMs: 60_000,
        propagationTimeoutMs: 120_000,
      });
      const context = {
        store: new MemoryStore(),
        clock: systemClock,
        logger: silentLogger,
        signal: controller.signal,
      };
      const error = await solver.present(task, context).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isCertkeeperError(error, 'CHALLENGE_FAILED'), String(error)).toBe(true);
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({
        fqdn: '_acme-challenge.never-visible.dns01.test',
      });
    });
  },
);

describe('Dns01Solver propagation wait, with a DNS server that never answers', () => {
  it('an attempt aborted while a propagation query is unanswered cancels the query instead of waiting it out', async () => {
    const controller = new AbortController();
    // A DNS server that never answers; the attempt is given up when the query reaches it.
    const silent = createSocket('udp4');
    silent.on('message', () => controller.abort());
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    try {
      const solver = new Dns01Solver({
        provider: { async setTxt() {}, async removeTxt() {} },
        resolvers: [`127.0.0.1:${silent.address().port}`],
        pollIntervalMs: 60_000,
      });
      const error = await solver
        .present(task, {
          store: new MemoryStore(),
          clock: systemClock,
          logger: silentLogger,
          signal: controller.signal,
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isCertkeeperError(error, 'CHALLENGE_FAILED'), String(error)).toBe(true);
      // Cancelled, not timed out: the resolver's own 2 s timeout did not have to pass.
      expect((error as { details: Record<string, unknown> }).details).toMatchObject({ last: 'ECANCELLED' });
    } finally {
      silent.close();
    }
  });
});
