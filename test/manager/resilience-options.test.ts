// The options of issuer fallback and of the revocation check are refused with INVALID_OPTION
// naming the option, like every other manager option.
import { describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const base = () => ({ store: new MemoryStore(), certificates: [{ names: ['opts.test'] }] });

describe('issuerCooldown and revocationCheck options', () => {
  it.each([
    ['issuerCooldown', 5, 'issuerCooldown'],
    ['issuerCooldown', { baseMs: 0 }, 'issuerCooldown.baseMs'],
    ['issuerCooldown', { jitter: 2 }, 'issuerCooldown.jitter'],
    ['issuerCooldown', { base: 1000 }, 'issuerCooldown.base'],
    ['revocationCheck', 'yes', 'revocationCheck'],
    ['revocationCheck', { minIntervalMs: -1 }, 'revocationCheck.minIntervalMs'],
    ['revocationCheck', { every: 1 }, 'revocationCheck.every'],
  ])('%s: %j is refused, naming %s', (key, value, option) => {
    expect(() => createCertificateManager({ ...base(), [key]: value })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: expect.objectContaining({ option }) }),
    );
  });

  it('a certificate profile must be a profile name', () => {
    for (const profile of ['', 'two words', 42]) {
      expect(() =>
        createCertificateManager({
          store: new MemoryStore(),
          certificates: [{ names: ['p.test'], profile } as never],
        }),
      ).toThrow(
        expect.objectContaining({ details: expect.objectContaining({ option: 'certificates[0].profile' }) }),
      );
    }
  });

  it('accepts the documented forms', () => {
    for (const extra of [
      { issuerCooldown: { baseMs: 1000, maxMs: 60_000, jitter: 0 } },
      { revocationCheck: false },
      { revocationCheck: true },
      {
        revocationCheck: {
          minIntervalMs: 1000,
          maxIntervalMs: 60_000,
          timeoutMs: 5000,
          maxBytes: 1 << 20,
          retireBoundMs: 500,
        },
      },
    ]) {
      expect(() => createCertificateManager({ ...base(), ...extra })).not.toThrow();
    }
  });
});
