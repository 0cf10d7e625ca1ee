// Certificates for the deploy tests, issued by the embedded CA (src/issuers/internal-ca.ts) into a
// memory store, in the shape a deploy target receives them.

import { systemClock } from '../../../src/clock.js';
import { createCsr } from '../../../src/crypto/csr.js';
import { inspectCertificate, parseCertificates } from '../../../src/crypto/inspect.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import type { DeployableGeneration } from '../../../src/deploy/target.js';
import { InternalCA } from '../../../src/issuers/internal-ca.js';
import { silentLogger } from '../../../src/logger.js';
import { MemoryStore } from '../../../src/store/memory-store.js';

export interface TestCa {
  /** A fresh certificate (new key, new serial) for `names`. */
  issue(names?: string[]): Promise<DeployableGeneration>;
  rootPem(): Promise<string>;
}

export function testCa(name = 'deploy'): TestCa {
  const ca = new InternalCA({ name });
  const store = new MemoryStore();
  const context = () => ({
    store,
    clock: systemClock,
    logger: silentLogger,
    signal: new AbortController().signal,
  });
  return {
    async issue(names = ['localhost', '127.0.0.1']) {
      const key = await PrivateKey.generate();
      const request = {
        id: names[0]!,
        names,
        purpose: 'server' as const,
        keyType: key.type,
        key,
        csr: await createCsr({ key, names }),
      };
      const { chainPem } = await ca.issue(request, context());
      const chain = parseCertificates(chainPem).map((c) => c.info);
      return { issuer: ca.id, chainPem, key, info: inspectCertificate(chainPem), chain };
    },
    rootPem: () => ca.rootCertificate(store),
  };
}
