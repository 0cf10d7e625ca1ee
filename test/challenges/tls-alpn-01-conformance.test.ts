// TlsAlpn01Solver against the ChallengeSolver conformance kit: a real TLS server answering
// `acme-tls/1` from the solver's own registry (standalone use), reached by the kit as a CA
// reaches it, for DNS names and IP addresses (RFC 8738 reverse names).
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { installAlpnChallenges } from '../../src/challenges/tls-alpn-01/server-hook.js';
import { TlsAlpn01Solver, tlsAlpnSupported } from '../../src/challenges/tls-alpn-01/solver.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runChallengeSolverConformance } from '../../src/testing/index.js';
import { selfSigned } from '../support/issuers.js';

await runChallengeSolverConformance('TlsAlpn01Solver', async () => {
  const solver = new TlsAlpn01Solver();
  const { key, certificate } = await selfSigned(['serving.test']);
  const server = tls.createServer({ key: key.toPem(), cert: certificate.pem, ALPNProtocols: ['http/1.1'] });
  const uninstall = installAlpnChallenges(server, solver.registry);
  server.on('secureConnection', (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const supported = tlsAlpnSupported();
  return {
    solver,
    domain: 'alpn-kit.test',
    ip: '127.0.0.1',
    supports: { dns: supported, wildcard: false, ip: supported },
    reach: { tls: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } },
    context: { store: new MemoryStore() },
    async cleanup() {
      uninstall?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
});
