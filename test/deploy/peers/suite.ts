// What every real peer is put through: certificates rotated repeatedly under client load with
// the live check proving each new certificate, a connection held open across the reloads, and
// two ways of breaking the deploy on purpose (a certificate the service refuses, and a service
// reading other files), each ending with the old certificate proven live again.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fileTarget } from '../../../src/deploy/file-target.js';
import type { DeployableGeneration } from '../../../src/deploy/target.js';
import { probeOnce } from '../../../src/deploy/verify/probe.js';
import { testCa } from '../../support/peers/generations.js';
import { removeTempDirs, stopAllPeers, tempDir } from '../../support/peers/process.js';
import type { ServiceDefinition, ServicePeer } from '../../support/peers/web.js';
import { holdConnection } from './held.js';

export interface Expectations {
  /** Whether the reload action fails when the service is not running (Apache's `graceful` starts one). */
  reloadFailsWhenDown: boolean;
  /** How the stale case is made: files where the service does not read, or no reload action. */
  stale?: 'elsewhere' | 'no-reload';
  /** Whether an established connection survives (and keeps answering) across reloads. */
  keepsConnections: boolean;
  /** Reloads per rotation test (bounded). Default 6. */
  rotations?: number;
}

const signal = () => AbortSignal.timeout(120_000);

/** The fingerprint of the certificate in the set's cert.pem. */
function servedFile(dir: string): string {
  return new X509Certificate(readFileSync(join(dir, 'cert.pem'))).fingerprint256
    .replaceAll(':', '')
    .toLowerCase();
}

/** New connections, one after another, until stopped: what a client fleet does during rotation. */
function load(service: ServicePeer) {
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const running = (async () => {
    while (!stop && ok + failures.length < 100_000) {
      try {
        await probeOnce(
          { host: '127.0.0.1', port: service.port, servername: 'localhost', protocol: service.protocol },
          10_000,
        );
        ok++;
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  })();
  return {
    async finish() {
      stop = true;
      await running;
      return { ok, failures };
    },
  };
}

export function peerSuite(definition: ServiceDefinition, expectations: Expectations): void {
  const present = definition.available();
  const ca = testCa(definition.name);

  describe.skipIf(!present)(`${definition.name} as a deploy target`, () => {
    afterEach(stopAllPeers);
    afterAll(removeTempDirs);

    async function started(): Promise<{ service: ServicePeer; dir: string; first: DeployableGeneration }> {
      const dir = join(tempDir(`${definition.name}-set`), 'set');
      const first = await ca.issue();
      // The first set exists before the service starts (it refuses to start without its files).
      await fileTarget({ ids: ['svc'], dir, files: definition.files, owner: definition.owner }).apply(
        'svc',
        first,
        signal(),
      );
      return { service: await definition.start(dir), dir, first };
    }

    function targetFor(service: ServicePeer, dir: string, timeoutMs = 15_000, reload = service.reload) {
      return fileTarget({
        name: definition.name,
        ids: ['svc'],
        dir,
        files: definition.files,
        owner: definition.owner,
        reload,
        verify: [
          {
            host: '127.0.0.1',
            port: service.port,
            servername: 'localhost',
            protocol: service.protocol,
            timeoutMs,
          },
        ],
      });
    }

    it('rotates repeatedly under client load; the live check proves each new certificate', async () => {
      const { service, dir, first } = await started();
      const target = targetFor(service, dir);
      expect((await target.verify('svc', first, signal()))?.fingerprint256).toBe(first.info.fingerprint256);
      const held = await holdConnection(service.port, service.protocol, service.ping);
      const clients = load(service);
      const rotations = expectations.rotations ?? 6;
      for (let i = 0; i < rotations; i++) {
        const next = await ca.issue();
        await target.apply('svc', next, signal());
        const check = await target.verify('svc', next, signal());
        expect(check?.fingerprint256).toBe(next.info.fingerprint256);
        const served = await probeOnce(
          { host: '127.0.0.1', port: service.port, servername: 'localhost', protocol: service.protocol },
          10_000,
        );
        expect(served.serial.replace(/^0+/, '')).toBe(next.info.serialNumber.replace(/^0+/, ''));
      }
      const { ok, failures } = await clients.finish();
      const survived = await held.alive();
      held.close();
      console.log(
        `[${definition.name}] ${rotations} rotations, ${ok} client handshakes, ${failures.length} failed; held connection ${survived ? 'kept and answering' : 'dropped'}`,
      );
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(0);
      expect(survived).toBe(expectations.keepsConnections);
    });

    it('a key that is not the certificate`s is refused before a file is written; the old one stays live', async () => {
      const { service, dir, first } = await started();
      const target = targetFor(service, dir);
      const broken: DeployableGeneration = { ...(await ca.issue()), key: (await ca.issue()).key };
      await expect(target.apply('svc', broken, signal())).rejects.toMatchObject({ code: 'DEPLOY_FAILED' });
      expect(servedFile(dir)).toBe(first.info.fingerprint256);
      expect((await target.verify('svc', first, signal()))?.fingerprint256).toBe(first.info.fingerprint256);
    });

    it.skipIf(!expectations.reloadFailsWhenDown)(
      'a reload that fails is DEPLOY_FAILED and puts the old files back',
      async () => {
        const { service, dir, first } = await started();
        const target = targetFor(service, dir);
        await service.peer.stop();
        const failure = await target.apply('svc', await ca.issue(), signal()).catch((error) => error);
        expect(failure).toMatchObject({ code: 'DEPLOY_FAILED' });
        expect(servedFile(dir)).toBe(first.info.fingerprint256);
      },
    );

    it('a service that keeps serving the old certificate fails the live check; rollback proves the old one live', async () => {
      const { service, dir, first } = await started();
      // The target writes where the service does not read (or forgets to tell it): the deploy
      // succeeds, and the service keeps what it loaded.
      const elsewhere =
        expectations.stale === 'no-reload' ? dir : join(tempDir(`${definition.name}-elsewhere`), 'set');
      const target = targetFor(
        service,
        elsewhere,
        4_000,
        expectations.stale === 'no-reload' ? [] : undefined,
      );
      await target.apply('svc', first, signal());
      const next = await ca.issue();
      await target.apply('svc', next, signal());
      const failure = await target.verify('svc', next, signal()).catch((error) => error);
      expect(failure).toMatchObject({
        code: 'LIVE_VERIFY_FAILED',
        details: {
          target: definition.name,
          expected: next.info.fingerprint256,
          served: first.info.fingerprint256,
        },
      });
      await target.rollback('svc', first, signal());
      expect(target.paths('svc').cert).toBe(join(elsewhere, 'cert.pem'));
      expect((await target.verify('svc', first, signal()))?.fingerprint256).toBe(first.info.fingerprint256);
    });
  });
}
