// manager.health(): the facts the health handler serves, from the manager itself — ready once
// served and valid; not ready ('unverified') while the served certificate is one whose deploy
// failed on a target; options checked like the handler's.
import { afterEach, describe, expect, it } from 'vitest';
import type { DeployableGeneration, DeployTarget } from '../../src/deploy/target.js';
import { CertkeeperError } from '../../src/errors.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { health } from '../../src/ops/health.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A target that takes every certificate and, once `failing`, cannot prove any. */
class Flaky implements DeployTarget {
  readonly name = 'flaky';
  failing = false;
  serves(): boolean {
    return true;
  }
  async apply(): Promise<void> {}
  async verify(_id: string, generation: DeployableGeneration) {
    if (this.failing) throw new CertkeeperError('LIVE_VERIFY_FAILED', 'flaky: another certificate is live');
    return { target: this.name, endpoint: 'memory', fingerprint256: generation.info.fingerprint256 };
  }
  async rollback(): Promise<void> {}
}

describe('manager.health()', () => {
  it('ready when served; unverified while a certificate whose deploy failed is kept', async () => {
    const target = new Flaky();
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer: new SwitchableIssuer(),
      logger: quiet,
      certificates: [{ id: 'web', names: ['web.test'] }],
      targets: [target],
      rollback: 'target',
    });
    cleanup.push(() => manager.stop());
    await manager.start();
    await manager.ready();
    const report = manager.health();
    expect(report).toMatchObject({ live: true, ready: true });
    expect(report.certificates).toEqual([expect.objectContaining({ id: 'web', ready: true, reason: null })]);
    expect(health(manager).ready).toBe(true);

    target.failing = true;
    await manager.renewNow('web');
    expect(manager.health().certificates[0]).toMatchObject({ ready: false, reason: 'unverified' });

    target.failing = false;
    await manager.renewNow('web');
    expect(manager.health().ready).toBe(true);
    expect(manager.health({ certificates: ['web', 'other'] }).certificates[1]).toMatchObject({
      id: 'other',
      reason: 'missing',
    });
    expect(() => manager.health({ expiryMarginMs: -1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'expiryMarginMs' } }),
    );
  });
});
