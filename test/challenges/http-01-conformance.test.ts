// Http01Solver against the ChallengeSolver conformance kit: answers go to the store and a real
// HTTP listener (createHttp01Handler over that store) serves them to the kit's GETs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttp01Handler, Http01Solver } from '../../src/challenges/http-01.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runChallengeSolverConformance } from '../../src/testing/index.js';

await runChallengeSolverConformance('Http01Solver', async () => {
  const store = new MemoryStore();
  const server = http.createServer(createHttp01Handler(store));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    solver: new Http01Solver(),
    domain: 'http01-kit.test',
    ip: '127.0.0.1',
    supports: { dns: true, wildcard: false, ip: true },
    reach: { http: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } },
    context: { store },
    async cleanup() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
