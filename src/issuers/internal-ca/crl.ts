/**
 * CRLs of the embedded CA, signed with keys that live only in the sealed state record. Each CA
 * certificate's CRL lists what it issued and revoked: an intermediate's lists leaves, a root's
 * lists intermediates (revoked by `rotateIntermediate({ reason })` or `revoke`).
 *
 * Node's `tls` checks a CRL for every CA certificate of a client chain once any CRL is set
 * (CRL_CHECK_ALL), so a server needs all of them (`crls()`): the current intermediate's and the
 * root's, every retired intermediate's whose leaves may still be in service and, during a root
 * rotation, the previous root's. Every CRL carries an AKI, which is how OpenSSL picks the right
 * one among issuers of the same name (intermediates before and after a renewal).
 */
import type { webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { toPem } from '../../crypto/pem.js';
import { crypto, x509 } from '../../crypto/x509.js';
import { REVOCATION_REASON_CODES as REASON_CODES } from '../revocation.js';
import { type Authority, DAY, MINUTE } from './authority.js';
import type { CaState } from './state.js';

/**
 * What `authority`'s CRL lists: entries it issued. Entries of an older store name no issuer;
 * they are leaves, listed by every intermediate (serials are random, so this harms nobody).
 */
function entriesOf(state: CaState, authority: Authority, isRoot: boolean): x509.X509CrlEntryParams[] {
  const keyId = authority.certificate.info.subjectKeyId;
  return state.revoked
    .filter((e) => (e.issuerKeyId ? e.issuerKeyId === keyId : !isRoot))
    .map((e) => ({
      serialNumber: e.serial,
      revocationDate: new Date(e.revokedAt),
      reason: REASON_CODES[e.reason],
    }));
}

async function signCrl(
  authority: Authority,
  entries: x509.X509CrlEntryParams[],
  now: number,
  validityMs: number,
): Promise<string> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: new x509.X509Certificate(authority.certificate.der).subjectName,
      thisUpdate: new Date(now - MINUTE),
      nextUpdate: new Date(now + validityMs),
      entries,
      // RFC 5280 §5.2: both MUST be present.
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(authority.certificate.info.subjectKeyId!, false),
        // The CRL number: seconds, so it increases from one CRL to the next (across replicas too).
        new x509.Extension(
          id_ce_cRLNumber,
          false,
          AsnConvert.serialize(new CRLNumber(Math.floor(now / 1000))),
        ),
      ],
      signingKey: (await authority.key.cryptoKeyPair()).privateKey,
      signingAlgorithm: authority.key.signingAlgorithm as webcrypto.Algorithm,
    },
    crypto,
  );
  // RFC 7468 label: OpenSSL and Node's `tls` refuse @peculiar/x509's `-----BEGIN CRL-----`.
  return toPem('X509 CRL', new Uint8Array(crl.rawData));
}

/** CRLs are valid for a leaf lifetime, at most a day: refresh them on that schedule. */
const validity = (leafLifetimeMs: number) => Math.min(leafLifetimeMs, DAY);

/** The current intermediate's CRL (revoked leaves). */
export function intermediateCrl(state: CaState, now: number, leafLifetimeMs: number): Promise<string> {
  return signCrl(
    state.intermediate,
    entriesOf(state, state.intermediate, false),
    now,
    validity(leafLifetimeMs),
  );
}

/** Every CRL a verifier that checks the whole chain needs, the intermediate's first, the root's second. */
export async function allCrls(state: CaState, now: number, leafLifetimeMs: number): Promise<string[]> {
  const ms = validity(leafLifetimeMs);
  const out = [
    await signCrl(state.intermediate, entriesOf(state, state.intermediate, false), now, ms),
    await signCrl(state.root, entriesOf(state, state.root, true), now, ms),
  ];
  for (const retired of state.retired) {
    if (retired.certificate.info.notAfter.getTime() > now)
      out.push(await signCrl(retired, entriesOf(state, retired, false), now, ms));
  }
  if (state.previous)
    out.push(await signCrl(state.previous, entriesOf(state, state.previous, true), now, ms));
  return out;
}
