// A new certificate that is wrong never replaces a working one: it is refused before it is stored
// or served, the refusal is reported with its typed reason, and renewal is retried later.
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { WriteOptions } from '../../src/store/store.js';
import { type Fault, SwitchableIssuer } from '../support/issuers.js';
import { makeRoot } from '../support/pki.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A MemoryStore whose writes can be made to fail like a full disk. */
class FlakyStore extends MemoryStore {
  failPuts = false;
  override async put(key: string, value: Uint8Array | string, options?: WriteOptions): Promise<void> {
    if (this.failPuts) throw new CertkeeperError('STORE_NO_SPACE', `no space left writing ${key}`);
    return super.put(key, value, options);
  }
}

async function running(issuer = new SwitchableIssuer()) {
  const store = new FlakyStore();
  const manager = createCertificateManager({
    store,
    issuer,
    logger: quiet,
    certificates: [{ id: 'web', names: ['localhost'] }],
  });
  cleanup.push(() => manager.stop());
  const server = tls.createServer({});
  manager.attach(server);
  await manager.start();
  await manager.ready();
  const port = await listen(server);
  cleanup.push(() => close(server));
  const pointerKey = layout.certificate(issuer.id, 'web').current;
  const pointer = async () => Buffer.from((await store.get(pointerKey))!).toString();
  return { manager, issuer, store, port, pointer, serial: manager.status()[0]!.serial! };
}

function collect(manager: CertificateManager) {
  const rolledBack: ManagerEvents['rolledBack'][0][] = [];
  const failed: ManagerEvents['renewalFailed'][0][] = [];
  const swapped: ManagerEvents['swapped'][0][] = [];
  manager.on('rolledBack', (e) => rolledBack.push(e));
  manager.on('renewalFailed', (e) => failed.push(e));
  manager.on('swapped', (e) => swapped.push(e));
  return { rolledBack, failed, swapped };
}

describe('rollback', () => {
  it.each([
    ['wrong-name', 'NAME_NOT_COVERED'],
    ['wrong-key', 'KEY_MISMATCH'],
  ] as [Fault, string][])(
    'an issuer answering %s is refused with %s; the old certificate stays',
    async (fault, code) => {
      const { manager, issuer, port, pointer, serial } = await running();
      const before = await pointer();
      const events = collect(manager);
      issuer.fault = fault;
      await expect(manager.renewNow('web')).rejects.toMatchObject({ code });
      expect(events.rolledBack).toHaveLength(1);
      expect(events.rolledBack[0]).toMatchObject({ id: 'web', servingSerial: serial });
      expect(events.rolledBack[0]!.reason.code).toBe(code);
      expect(events.rolledBack[0]!.rejectedSerial).not.toBe(serial);
      expect(events.failed[0]!.error.code).toBe(code);
      expect(events.swapped).toHaveLength(0);
      expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
      expect(await pointer()).toBe(before);
      expect(manager.status()[0]).toMatchObject({ serial, failures: 1, lastError: { code } });

      issuer.fault = null;
      await manager.renewNow('web');
      expect(manager.status()[0]).toMatchObject({ failures: 0, lastError: null });
      expect((await handshake(port, { servername: 'localhost' })).serial).toBe(manager.status()[0]!.serial);
    },
  );

  it('a CA answering garbage (an HTML error page) costs nothing', async () => {
    const { manager, issuer, port, pointer, serial } = await running();
    const before = await pointer();
    const events = collect(manager);
    issuer.fault = 'garbage';
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'MALFORMED_PEM' });
    expect(events.failed[0]!.error.code).toBe('MALFORMED_PEM');
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
    expect(await pointer()).toBe(before);
  });

  it('a chain that does not end at the issuer’s trust anchor is refused (UNTRUSTED_ROOT)', async () => {
    const issuer = new SwitchableIssuer();
    const impostor = await makeRoot('certkeeper-internal Root CA');
    const { manager, port, serial } = await running(issuer);
    const events = collect(manager);
    issuer.trustAnchors = async () => [impostor.certificate.pem];
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'UNTRUSTED_ROOT' });
    expect(events.rolledBack[0]!.reason.code).toBe('UNTRUSTED_ROOT');
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
  });

  it('a store that cannot write (no space) keeps the served certificate and retries', async () => {
    const { manager, store, port, serial } = await running();
    const events = collect(manager);
    store.failPuts = true;
    await expect(manager.renewNow('web')).rejects.toMatchObject({ code: 'STORE_NO_SPACE' });
    expect(events.failed[0]!.error.code).toBe('STORE_NO_SPACE');
    expect(events.failed[0]!.retryAt.getTime()).toBeGreaterThan(Date.now());
    expect(events.swapped).toHaveLength(0);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
    store.failPuts = false;
    await manager.renewNow('web');
    expect(manager.status()[0]!.serial).not.toBe(serial);
  });
});
