// The embedded CA's CRLs as two independent parsers read them: OpenSSL and @peculiar/x509 (the
// library that builds them). The fields verifiers rely on: issuer, AKI, CRL number, validity.
import { describe, expect, it } from 'vitest';
import { x509 } from '../../../src/crypto/x509.js';
import { InternalCA } from '../../../src/issuers/internal-ca.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { cleanupAfterEach, context, issue, openssl } from '../internal-ca-support.js';

cleanupAfterEach();

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** How `openssl crl -text` prints a time: `May  6 07:08:09 2031 GMT`. */
function opensslDate(ms: number): string {
  const d = new Date(ms);
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  return `${month} ${String(d.getUTCDate()).padStart(2)} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()} GMT`;
}

describe('InternalCA CRLs', () => {
  it('carry a CRL number (seconds of now), the signer AKI and a validity of one leaf lifetime', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ lifetimeMs: 6 * HOUR });
    const gone = await issue(ca, store, ['gone'], 'client');
    await ca.revoke({ chainPem: gone.chainPem }, 'superseded', context(store));
    // Three days on (within the intermediate's life): CRLs are dated by `now`, not by the host.
    const now = Math.floor(Date.now() / 1000) * 1000 + 3 * 24 * HOUR + 500;
    const [leaves, roots] = await ca.crls(store, now);

    const shown = openssl(['crl', '-noout', '-text'], leaves!);
    expect(shown.ok, shown.output).toBe(true);
    expect(shown.output).toMatch(new RegExp(`X509v3 CRL Number:\\s*\\n\\s*${Math.floor(now / 1000)}\\b`));
    expect(shown.output).toContain(`Last Update: ${opensslDate(now - MINUTE)}`);
    expect(shown.output).toContain(`Next Update: ${opensslDate(now + 6 * HOUR)}`);
    expect(shown.output).toMatch(/X509v3 Authority Key Identifier/);

    const parsed = new x509.X509Crl(leaves!);
    const intermediate = new x509.X509Certificate(gone.chain[0]!.pem);
    expect(parsed.issuer).toBe(intermediate.subject);
    expect(parsed.thisUpdate.getTime()).toBe(Math.floor(now / 1000) * 1000 - MINUTE);
    expect(parsed.nextUpdate?.getTime()).toBe(Math.floor(now / 1000) * 1000 + 6 * HOUR);
    expect(parsed.entries.map((e) => [e.serialNumber, e.reason])).toEqual([
      [gone.leaf.info.serialNumber, x509.X509CrlReason.superseded],
    ]);
    expect(await parsed.verify({ publicKey: intermediate })).toBe(true);
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(gone.chain[0]!.info.subjectKeyId);

    // The root's CRL: signed by the root, empty here, numbered the same way.
    const rootCrl = new x509.X509Crl(roots!);
    expect(rootCrl.issuer).toMatch(/Root CA/);
    expect(rootCrl.entries).toHaveLength(0);
    expect(openssl(['crl', '-noout', '-crlnumber'], roots!).output.trim()).toMatch(
      new RegExp(`^crlNumber=0x${Math.floor(now / 1000).toString(16)}$`, 'i'),
    );
  });

  it('a CRL is valid for at most a day, whatever the leaf lifetime', async () => {
    const store = new MemoryStore();
    const ca = new InternalCA({ lifetimeMs: 30 * 24 * HOUR, intermediateLifetimeMs: 400 * 24 * HOUR });
    const now = Date.now();
    const parsed = new x509.X509Crl(await ca.crl(store, now));
    expect(parsed.nextUpdate!.getTime() - parsed.thisUpdate.getTime()).toBe(24 * HOUR + MINUTE);
  });
});
