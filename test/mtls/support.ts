// Two services in mutual TLS, each with its own manager and embedded CA, each trusting both CAs:
// service A serves `a-web` and calls out as `a-client`, service B likewise. Both rotate every
// certificate they own while the tests call continuously.
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

export const silent = { debug() {}, info() {}, warn() {}, error() {} };

export interface Service {
  name: string;
  manager: CertificateManager;
  root: string;
}

export async function startService(name: string): Promise<Service> {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const store = new MemoryStore();
  const manager = createCertificateManager({
    store,
    issuer,
    certificates: [
      { id: `${name}-web`, names: ['localhost', '127.0.0.1'] },
      { id: `${name}-client`, names: [`${name}.svc.test`], purpose: 'client' },
    ],
    logger: silent,
    reconcileIntervalMs: 0,
  });
  await manager.start();
  await manager.ready();
  return { name, manager, root: await issuer.ca.rootCertificate(store) };
}

/**
 * Renews every certificate of every service, one after another, every `everyMs`, until `until`
 * resolves. Returns the number of rotations and the serials each client id has left behind.
 */
export async function rotateWhile(
  services: Service[],
  everyMs: number,
  until: Promise<unknown>,
): Promise<{ rotations: number; retired: Map<string, Set<string>> }> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const retired = new Map<string, Set<string>>();
  let rotations = 0;
  while (!done) {
    for (const service of services) {
      for (const id of [`${service.name}-web`, `${service.name}-client`]) {
        const before = service.manager.certificate(id)!.serial;
        await service.manager.renewNow(id);
        if (!retired.has(id)) retired.set(id, new Set());
        retired.get(id)!.add(before);
        rotations++;
      }
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return { rotations, retired };
}

/** One spelling for a serial, whether from the manager (DER content hex) or getPeerCertificate(). */
export const serialKey = (serial: string) => BigInt(`0x${serial}`).toString(16);
