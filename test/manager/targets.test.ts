// The deploy path over targets that are not Node servers: a target writing the certificate to a
// file and proving it by reading the file back, and one whose proof fails. A failed deploy puts
// every target back (rollback 'all', the default) or only the failed one (rollback 'target').
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeployableGeneration, DeployTarget, LiveCheck } from '../../src/deploy/target.js';
import { CertkeeperError } from '../../src/errors.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { readPointer } from '../../src/manager/records.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Writes the chain to `<dir>/<id>.pem`; verifies by reading it back and comparing the leaf. */
class FileTarget implements DeployTarget {
  readonly applied: string[] = [];
  readonly rolledBack: string[] = [];
  /** While true, verify reads back what another writer put there (a file that did not take). */
  clobber = false;
  constructor(
    readonly name: string,
    readonly dir: string,
  ) {}
  serves(id: string): boolean {
    return id === 'web';
  }
  path(id: string): string {
    return join(this.dir, `${id}.pem`);
  }
  async apply(id: string, generation: DeployableGeneration): Promise<void> {
    writeFileSync(this.path(id), generation.chainPem);
    this.applied.push(generation.info.serialNumber);
  }
  async verify(id: string, generation: DeployableGeneration): Promise<LiveCheck> {
    if (this.clobber) writeFileSync(this.path(id), 'something else');
    const onDisk = readFileSync(this.path(id), 'utf8');
    if (onDisk !== generation.chainPem)
      throw new CertkeeperError('LIVE_VERIFY_FAILED', `${this.name}: the file holds another certificate`);
    return { target: this.name, endpoint: this.path(id), fingerprint256: generation.info.fingerprint256 };
  }
  async rollback(id: string, previous: DeployableGeneration | null): Promise<void> {
    if (previous) writeFileSync(this.path(id), previous.chainPem);
    else rmSync(this.path(id), { force: true });
    this.rolledBack.push(previous?.info.serialNumber ?? 'none');
  }
  served(id = 'web'): string {
    return readFileSync(this.path(id), 'utf8');
  }
}

async function running(rollback?: 'all' | 'target') {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-targets-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const good = new FileTarget('files-a', join(dir));
  const bad = new FileTarget('files-b', mkdtempSync(join(dir, 'b-')));
  const store = new MemoryStore();
  const issuer = new SwitchableIssuer();
  const manager = createCertificateManager({
    store,
    issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: ['web.test'] }],
    targets: [good, bad],
    ...(rollback ? { rollback } : {}),
  });
  cleanup.push(() => manager.stop());
  await manager.start();
  await manager.ready();
  const events = {
    swapped: [] as ManagerEvents['swapped'][0][],
    failed: [] as ManagerEvents['liveVerifyFailed'][0][],
    rolledBack: [] as ManagerEvents['rolledBack'][0][],
  };
  manager.on('swapped', (e) => events.swapped.push(e));
  manager.on('liveVerifyFailed', (e) => events.failed.push(e));
  manager.on('rolledBack', (e) => events.rolledBack.push(e));
  return { manager, store, issuer, good, bad, events };
}

describe('deploy targets', () => {
  it('applies every new certificate to each target and verifies it there', async () => {
    const { manager, good, bad, events } = await running();
    const first = manager.certificate('web')!;
    expect(good.served()).toBe(first.chainPem);
    expect(bad.served()).toBe(first.chainPem);
    await manager.renewNow('web');
    const renewed = manager.certificate('web')!;
    expect(renewed.serial).not.toBe(first.serial);
    expect(good.served()).toBe(renewed.chainPem);
    expect(bad.served()).toBe(renewed.chainPem);
    expect(events.swapped).toEqual([
      expect.objectContaining({ id: 'web', servers: 2, verified: 2, targets: ['files-a', 'files-b'] }),
    ]);
  });

  it("rollback 'all' (default): one target's failed check puts every target, the memory and the store back", async () => {
    const { manager, store, issuer, good, bad, events } = await running();
    const before = manager.certificate('web')!;
    bad.clobber = true;
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'LIVE_VERIFY_FAILED' });
    expect(events.failed).toEqual([expect.objectContaining({ id: 'web', target: 'files-b' })]);
    expect(events.rolledBack).toEqual([
      expect.objectContaining({
        id: 'web',
        target: 'files-b',
        targets: ['files-a', 'files-b'],
        servingSerial: before.serial,
      }),
    ]);
    expect(events.swapped).toEqual([]);
    // The target that took it went back too.
    expect(good.served()).toBe(before.chainPem);
    expect(bad.served()).toBe(before.chainPem);
    expect(good.rolledBack).toEqual([before.serial]);
    expect(manager.certificate('web')!.serial).toBe(before.serial);
    expect((await readPointer(store, issuer.id, 'web'))!.serial).toBe(before.serial);
    expect(manager.status()[0]!.lastError?.code).toBe('LIVE_VERIFY_FAILED');
  });

  it("rollback 'target': only the failed target goes back; the others keep the new certificate", async () => {
    const { manager, store, issuer, good, bad, events } = await running('target');
    const before = manager.certificate('web')!;
    bad.clobber = true;
    await manager.renewNow('web');
    const after = manager.certificate('web')!;
    expect(after.serial).not.toBe(before.serial);
    expect(events.failed).toEqual([expect.objectContaining({ target: 'files-b' })]);
    expect(events.rolledBack).toEqual([expect.objectContaining({ target: 'files-b', targets: ['files-b'] })]);
    expect(events.swapped).toEqual([
      expect.objectContaining({ serial: after.serial, targets: ['files-a'], verified: 1 }),
    ]);
    expect(good.served()).toBe(after.chainPem);
    expect(bad.served()).toBe(before.chainPem);
    expect(good.rolledBack).toEqual([]);
    expect((await readPointer(store, issuer.id, 'web'))!.serial).toBe(after.serial);
  });

  it('a target that refuses to apply is a failed deploy (DEPLOY_FAILED naming it)', async () => {
    const { manager, good, bad, events } = await running();
    const before = manager.certificate('web')!;
    bad.apply = async () => {
      throw new Error('reload command exited with 1');
    };
    await expect(manager.renewNow('web')).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      details: { target: 'files-b', step: 'apply' },
    });
    expect(events.rolledBack[0]).toMatchObject({ target: 'files-b', targets: ['files-a', 'files-b'] });
    expect(good.served()).toBe(before.chainPem);
  });

  it('addTarget applies what is served at once; its remover takes it out of later deploys', async () => {
    const { manager, good } = await running();
    const dir = mkdtempSync(join(good.dir, 'late-'));
    const late = new FileTarget('files-late', dir);
    const remove = manager.addTarget(late);
    await expect.poll(() => late.applied.length).toBe(1);
    expect(late.served()).toBe(manager.certificate('web')!.chainPem);
    expect(() => manager.addTarget(new FileTarget('files-a', dir))).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    remove();
    await manager.renewNow('web');
    expect(late.applied).toHaveLength(1);
    expect(good.served()).toBe(manager.certificate('web')!.chainPem);
  });

  it('refuses targets that are not targets, and an unknown rollback policy', () => {
    const base = { store: new MemoryStore(), logger: quiet, certificates: [{ names: ['web.test'] }] };
    expect(() => createCertificateManager({ ...base, targets: [{ name: 'x' } as never] })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'targets[0]' } }),
    );
    expect(() => createCertificateManager({ ...base, rollback: 'some' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: { option: 'rollback' } }),
    );
  });
});
