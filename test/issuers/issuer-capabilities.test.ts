// Issuer capabilities: an issuer is an id and issue(); renew, revoke, trust anchors, a renewal
// window and close are detected once by their type guards, and the manager uses only what an
// issuer has (a one-method issuer issues and renews; revoking through it is NOT_SUPPORTED).
import { afterEach, describe, expect, it } from 'vitest';
import {
  capabilitiesOf,
  type Issuer,
  isAnchorSource,
  isClosable,
  isRenewalWindowSource,
  isRenewer,
  isRevoker,
} from '../../src/issuers/issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('issuer capabilities', () => {
  it('are detected by their guards, once per issuer', () => {
    const inner = new SwitchableIssuer();
    const minimal: Issuer = { id: 'minimal', issue: (request, context) => inner.issue(request, context) };
    const none = capabilitiesOf(minimal);
    expect(none).toEqual({
      issuer: minimal,
      renewer: undefined,
      revoker: undefined,
      anchors: undefined,
      window: undefined,
      closable: undefined,
    });
    const full = {
      ...minimal,
      renew: async () => ({ chainPem: '' }),
      revoke: async () => {},
      trustAnchors: async () => [],
      renewalWindow: async () => null,
      close: async () => {},
    };
    expect(
      [isRenewer, isRevoker, isAnchorSource, isRenewalWindowSource, isClosable].map((g) => g(full)),
    ).toEqual([true, true, true, true, true]);
    expect(
      [isRenewer, isRevoker, isAnchorSource, isRenewalWindowSource, isClosable].map((g) => g(minimal)),
    ).toEqual([false, false, false, false, false]);
    expect(capabilitiesOf(full).revoker).toBe(full);
  });

  it('a one-method issuer issues and renews; revoking through it is NOT_SUPPORTED', async () => {
    const inner = new SwitchableIssuer();
    const minimal: Issuer = { id: inner.id, issue: inner.issue.bind(inner) };
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer: minimal,
      logger: quiet,
      certificates: [{ id: 'web', names: ['web.test'] }],
    });
    cleanup.push(() => manager.stop());
    await manager.start();
    await manager.ready();
    const first = manager.certificate('web')!.serial;
    await manager.renewNow('web');
    expect(manager.certificate('web')!.serial).not.toBe(first);
    await expect(manager.revoke('web')).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
    expect(await manager.trustAnchors()).toEqual([]);
  });

  it('close() of an issuer passed in is left to its creator', async () => {
    const issuer = Object.assign(new SwitchableIssuer(), { closes: 0 });
    (issuer as unknown as { close: () => Promise<void> }).close = async () => {
      issuer.closes++;
    };
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      logger: quiet,
      certificates: [{ id: 'web', names: ['web.test'] }],
    });
    await manager.start();
    await manager.ready();
    await manager.stop();
    expect(issuer.closes).toBe(0);
  });
});
