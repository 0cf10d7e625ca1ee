// stop() with an ACME order in flight, against Pebble and a real Redis store: stop() resolves
// only once the attempt has ended and the order has cleaned up after itself, so that the
// documented shutdown (`await manager.stop(); await store.close()`) leaves no challenge record
// or acknowledgement in the shared store and logs no clean-up failure.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChallengeTask } from '../../src/challenges/solver.js';
import { TlsAlpn01Solver } from '../../src/challenges/tls-alpn-01/solver.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import type { IssuerContext } from '../../src/issuers/issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createHttpsServer } from '../../src/server/create-server.js';
import { layout } from '../../src/store/layout.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';
import { eventually, redisPeer } from '../support/services.js';
import { close } from '../support/tls.js';

const redisUrl = await redisPeer();

/**
 * Presents the challenge (record in the store, this replica's acknowledgement written by its
 * cluster sync), reports that moment to the test, then waits for the attempt to be given up: the
 * CA is never asked to validate, so the order is in flight when the test stops the manager.
 */
class HeldSolver extends TlsAlpn01Solver {
  readonly presented: Promise<void>;
  #presented!: () => void;
  constructor(readonly replicaId: string) {
    super();
    this.presented = new Promise((resolve) => {
      this.#presented = resolve;
    });
  }
  override async present(task: ChallengeTask, context: IssuerContext): Promise<void> {
    await super.present(task, context);
    const ack = layout.alpnAck(task.identifier.value, this.replicaId);
    await eventually(() => context.store.get(ack), 10_000);
    this.#presented();
    await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
  }
}

describePebble('stop() with an order in flight', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble();
  }, 30_000);
  afterAll(() => pebble?.stop());

  it.skipIf(!redisUrl)(
    'resolves after the order cleaned up: closing the store right after leaves nothing behind',
    async () => {
      const prefix = `certkeeper-stop-${randomUUID()}`;
      const key = randomBytes(32);
      const lines: string[] = [];
      const log = (level: string) => (message: string, fields?: object) =>
        lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
      const logger = { debug() {}, info() {}, warn: log('warn'), error: log('error') };
      const store = new RedisStore({ url: redisUrl!, prefix, encryption: { keys: [key] }, logger });
      const replicaId = `stop-${randomUUID().slice(0, 8)}`;
      const solver = new HeldSolver(replicaId);
      const issuer = new AcmeIssuer({
        directoryUrl: pebble.directoryUrl,
        ca: pebble.caPem,
        agreeToTerms: true,
        challenges: [solver],
      });
      const name = `stop-${randomUUID().slice(0, 8)}.test`;
      const manager = createCertificateManager({
        store,
        issuer,
        logger,
        replicaId,
        reconcileIntervalMs: 0,
        certificates: [{ id: 'web', names: [name] }],
      });
      const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(pebble.tlsPort, '127.0.0.1', resolve));
      try {
        await manager.start();
        await solver.presented;
        await manager.stop();
        await store.close();
      } finally {
        await close(server);
        await issuer.close();
      }

      const reader = new RedisStore({ url: redisUrl!, prefix, encryption: { keys: [key] }, logger });
      try {
        expect(await reader.list('challenges')).toEqual([]);
      } finally {
        for (const k of await reader.list('')) await reader.delete(k);
        await reader.close();
      }
      expect(lines.filter((l) => /cleanup failed|is closed|STORE_CLOSED/.test(l))).toEqual([]);
    },
    60_000,
  );
});
