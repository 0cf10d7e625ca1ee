// InternalCA root rotation as a state machine, and rotateCa resuming an interrupted rotation.
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { managerChains, rotateCa } from '../../src/trust/ca-rotation.js';
import { chainsToAnchor } from '../../src/trust/chain.js';
import { InternalCaTrustSource } from '../../src/trust/internal-ca-source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('InternalCA root rotation', () => {
  it('moves none → introduced → activated → none, refusing steps out of order', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ store });
    const original = await ca.rootCertificate();
    const start = await ca.rootRotation();
    expect(start).toMatchObject({ phase: 'none', next: null, previous: null });
    await expect(ca.activateNextRoot()).rejects.toMatchObject({ code: 'CA_ROTATION_STATE' });
    await expect(ca.finishRootRotation()).rejects.toMatchObject({ code: 'CA_ROTATION_STATE' });

    let notified = 0;
    ca.onAnchorsChanged(() => notified++);
    const introduced = await ca.beginRootRotation();
    expect(introduced.phase).toBe('introduced');
    expect(await ca.beginRootRotation()).toEqual(introduced); // idempotent
    expect(await ca.publishedRoots()).toHaveLength(2);
    // Still issuing from the old root.
    expect(await ca.rootCertificate()).toBe(original);

    const activated = await ca.activateNextRoot();
    expect(activated).toMatchObject({
      phase: 'activated',
      current: introduced.next,
      previous: start.current,
    });
    await expect(ca.beginRootRotation()).rejects.toMatchObject({ code: 'CA_ROTATION_STATE' });
    const roots = (await ca.publishedRoots()).map((p) => parseCertificates(p)[0]!);
    expect(roots.map((r) => r.info.fingerprint256)).toEqual([activated.current, start.current]);
    expect(roots[0]!.info.subject).not.toBe(roots[1]!.info.subject);

    const done = await ca.finishRootRotation({ guard: (remaining) => expect(remaining).toHaveLength(1) });
    expect(done).toMatchObject({ phase: 'none', current: activated.current, previous: null });
    expect(await ca.publishedRoots()).toHaveLength(1);
    expect(notified).toBe(3); // once per change: the idempotent second begin changed nothing
    // The store holds no key of the old root's successor twice, and no next root any more.
    expect((await store.list('ca')).filter((k) => k.includes('root-next'))).toEqual([]);
  });

  it('rotateCa resumes a rotation interrupted after activation and re-issues under the new root', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ store, lifetimeMs: 3_600_000 });
    const manager = createCertificateManager({
      store,
      issuer: ca,
      certificates: [{ id: 'web', names: ['localhost'] }],
      logger: silent,
      clock: systemClock,
    });
    await manager.start();
    await manager.ready();
    const trust = new TrustStore({
      sources: [new InternalCaTrustSource(ca, { store })],
      protect: managerChains(manager),
    });
    await trust.start();
    await ca.beginRootRotation();
    await trust.refresh();
    await ca.activateNextRoot();
    // "Restart": a rotation in phase `activated` is finished by the next rotateCa, which still
    // re-issues first (the guard would refuse otherwise).
    const phases: string[] = [];
    const final = await rotateCa({ ca, manager, trust, settle: (p) => void phases.push(p) });
    expect(final.phase).toBe('none');
    expect(phases).toEqual(['activated']);
    const newRoot = parseCertificates((await ca.publishedRoots())[0]!);
    expect(chainsToAnchor(parseCertificates(manager.certificate('web')!.chainPem), newRoot)).toBe(true);
    await manager.stop();
    trust.stop();
  });

  it('a failed re-issue stops rotateCa before the old root goes; the same call resumes it', async () => {
    const store = new MemoryStore();
    const issuer = new SwitchableIssuer({ store, lifetimeMs: 3_600_000 });
    const manager = createCertificateManager({
      store,
      issuer,
      certificates: [{ id: 'web', names: ['localhost'] }],
      logger: silent,
      clock: systemClock,
    });
    await manager.start();
    await manager.ready();
    // No `protect` here, as in the README's example.
    const trust = new TrustStore({ sources: [new InternalCaTrustSource(issuer.ca, { store })] });
    await trust.start();
    const oldRoot = trust.current().fingerprints[0]!;
    issuer.fault = 'down'; // every re-issue under the new root fails
    await expect(rotateCa({ ca: issuer.ca, manager, trust })).rejects.toMatchObject({
      code: 'RENEWAL_FAILED',
      details: { failed: { web: 'ISSUER_UNAVAILABLE' } },
    });
    expect(trust.current().fingerprints).toContain(oldRoot);
    expect((await issuer.ca.rootRotation()).phase).toBe('activated');
    // Once issuance works again, the same call finishes the rotation.
    issuer.fault = null;
    expect((await rotateCa({ ca: issuer.ca, manager, trust })).phase).toBe('none');
    expect(trust.current().fingerprints).not.toContain(oldRoot);
    await manager.stop();
    trust.stop();
  });
});
