// The embedded CA against the Issuer conformance kit: every name kind, every key type it signs
// for, both purposes, revocation checked against its own list of revoked serials.
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runIssuerConformance } from '../../src/testing/index.js';

await runIssuerConformance('InternalCA', () => {
  const store = new MemoryStore();
  const issuer = new InternalCA({ lifetimeMs: 3_600_000 });
  return {
    issuer,
    domain: 'internal.test',
    wildcard: true,
    ip: '10.0.0.7',
    keyTypes: ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'],
    context: { store },
    isRevoked: async (serial) => (await issuer.revokedSerials(store)).includes(serial),
  };
});
