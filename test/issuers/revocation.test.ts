// The RFC 5280 reason codes: one map, the one @peculiar/x509 (and so every CRL reader) agrees
// with, and no other copy in the sources.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { x509 } from '../../src/crypto/x509.js';
import { REVOCATION_REASON_CODES } from '../../src/issuers/revocation.js';

it('each reason has its RFC 5280 CRLReason code, as @peculiar/x509 numbers them', () => {
  expect(REVOCATION_REASON_CODES).toEqual({
    unspecified: x509.X509CrlReason.unspecified,
    keyCompromise: x509.X509CrlReason.keyCompromise,
    caCompromise: x509.X509CrlReason.cACompromise,
    affiliationChanged: x509.X509CrlReason.affiliationChanged,
    superseded: x509.X509CrlReason.superseded,
    cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  });
  expect(Object.isFrozen(REVOCATION_REASON_CODES)).toBe(true);
});

it('no other map of reasons to codes in src/', () => {
  const root = join(__dirname, '..', '..', 'src');
  const copies: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts') && /^\s*keyCompromise:/m.test(readFileSync(path, 'utf8'))) {
        copies.push(relative(root, path));
      }
    }
  };
  walk(root);
  expect(copies).toEqual(['issuers/revocation.ts']);
});
