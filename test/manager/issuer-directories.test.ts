// Each issuer keeps its accounts and certificates in a store directory named by `issuerKey(id)`,
// which folds case, spaces and URLs (it cannot change: it would move every stored account and
// certificate), so two different ids can name one directory: "Internal CA" and "internal_ca" both
// give `internal_ca`. Two such issuers would share generations, pointers and accounts; the
// configuration is refused, naming the second issuer.
import { describe, expect, it } from 'vitest';
import { createCertificateManager, type ManagerOptions } from '../../src/index.js';
import type { Issuer } from '../../src/issuers/issuer.js';
import { issuerKey, layout } from '../../src/store/layout.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const issuer = (id: string): Issuer => ({ id, issue: async () => ({ chainPem: '' }) });

function attempt(issuers: Issuer[]): unknown {
  try {
    createCertificateManager({
      store: new MemoryStore(),
      issuer: issuers,
      certificates: [{ id: 'a', names: ['a.test'] }],
    } as ManagerOptions);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('issuers whose ids share a store directory', () => {
  it.each([
    ['Internal CA', 'internal_ca'],
    ['ACME', 'acme'],
    ['https://acme.example/dir', 'acme.example-dir'],
    ['https://acme.example:14000/dir', 'https://ACME.example:14000/dir/'],
  ])('%s and %s are refused (issuer[2])', (a, b) => {
    // The same directory for both, as the store sees it.
    expect(layout.certificate(a, 'a').dir).toBe(layout.certificate(b, 'a').dir);
    const error = attempt([issuer('other'), issuer(a), issuer(b)]);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'issuer[2]' } });
    expect((error as Error).message).toContain(`options.issuer[2]`);
    expect((error as Error).message).toContain(JSON.stringify(b));
    expect((error as Error).message).toContain(JSON.stringify(a));
    expect((error as Error).message).toContain(issuerKey(a));
  });

  it('ids in distinct directories are accepted', () => {
    expect(attempt([issuer('internal-ca'), issuer('internal_ca'), issuer('https://acme.example/dir')])).toBe(
      undefined,
    );
  });

  it('an id no store directory can be named for is refused up front, naming the issuer', () => {
    const error = attempt([issuer('ok'), issuer('x'.repeat(300))]);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'issuer[1]' } });
  });
});
