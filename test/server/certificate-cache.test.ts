// The certificate cache handshakes read: a hit is answered from memory without the loader; a
// miss queues one load job, started after the handshake callback returned and shared by every
// handshake waiting for it. Through a manager: a handshake's lazy load puts the certificate in
// the cache and applies it to no target, and asks the issuer for no renewal window itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateInfo } from '../../src/crypto/inspect.js';
import type { DeployableGeneration } from '../../src/deploy/target.js';
import type { RenewalWindow } from '../../src/issuers/issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { CertificateCache } from '../../src/server/certificate-cache.js';
import { FileStore } from '../../src/store/file-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const fake = (serial: string) => ({ info: { serialNumber: serial } }) as unknown as DeployableGeneration;

describe('CertificateCache', () => {
  it('answers names and hits from memory; a miss is one queued job, run after the caller returned', async () => {
    const cache = new CertificateCache();
    cache.add('web', ['web.test', '*.apps.test'], true);
    cache.add('client', ['client.test'], false);
    const loads: string[] = [];
    cache.setLoader(async (id) => {
      loads.push(id);
      return fake('01');
    });
    expect(cache.lookup('x.apps.test')).toBe('web');
    expect(cache.lookup('client.test')).toBeUndefined(); // client certificates serve no handshake
    expect(cache.serverIds()).toEqual(['web']);

    const first = cache.request('web');
    const second = cache.request('web');
    expect(loads).toEqual([]); // nothing ran inside the caller
    expect(await first).toBe(await second);
    expect(loads).toEqual(['web']);

    cache.set('web', fake('02'));
    expect(cache.current('web')?.info.serialNumber).toBe('02');
    cache.remove('web');
    expect(cache.lookup('web.test')).toBeUndefined();
    expect(cache.current('web')).toBeUndefined();
  });
});

class WindowIssuer extends SwitchableIssuer {
  windowCalls = 0;
  async renewalWindow(_info: CertificateInfo): Promise<RenewalWindow | null> {
    this.windowCalls++;
    return null;
  }
}

describe('a handshake for a certificate not in memory', () => {
  it('loads it into the cache, applies it to no target, and leaves the renewal window to the loop', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-cache-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const certificates = [
      { id: 'web', names: ['web.test'] },
      { id: 'api', names: ['api.test'] },
    ];
    const issuer = new WindowIssuer({ lifetimeMs: 3_600_000 });
    const first = createCertificateManager({
      store: new FileStore({ directory: dir }),
      issuer,
      certificates,
      logger: quiet,
      reconcileIntervalMs: 0,
    });
    await first.start();
    await first.ready();
    const apiSerial = first.certificate('api')!.serial;
    await first.stop();

    const clock = new FakeClock();
    const m = createCertificateManager({
      store: new FileStore({ directory: dir }),
      issuer,
      certificates,
      logger: quiet,
      clock,
      reconcileIntervalMs: 0,
      eagerLoadLimit: 0,
    });
    cleanup.push(() => m.stop());
    await m.start();
    const server = tls.createServer({});
    const attachment = m.attach(server, { defaultCertificate: 'web' });
    await m.load('web');
    const applied: string[] = [];
    const apply = attachment.apply.bind(attachment);
    attachment.apply = (id, generation, signal) => {
      applied.push(id);
      return apply(id, generation, signal);
    };
    const port = await listen(server);
    cleanup.push(() => close(server));
    const windowsBefore = issuer.windowCalls;
    expect(m.certificate('api')).toBeNull();

    expect((await handshake(port, { servername: 'api.test' })).serial).toBe(apiSerial);
    expect(m.certificate('api')!.serial).toBe(apiSerial);
    expect(applied).toEqual([]);
    expect(issuer.windowCalls).toBe(windowsBefore);
    // The loop asks for it on its next wake.
    await clock.advance(0);
    await expect.poll(() => issuer.windowCalls).toBe(windowsBefore + 1);
  });
});
