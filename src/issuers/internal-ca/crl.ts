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
 *
 * A root kept offline signs its CRL on the admin machine (`certkeeper ca sign-crl`, which
 * imports it into the state); `crls()` serves that one while it is current and otherwise
 * refuses (CA_ROOT_OFFLINE) rather than hand out a stale CRL that verifiers would reject.
 */
import type { webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import type { PrivateKey } from '../../crypto/keys.js';
import { toPem } from '../../crypto/pem.js';
import { crypto, x509 } from '../../crypto/x509.js';
import { REVOCATION_REASON_CODES as REASON_CODES } from '../revocation.js';
import { type Authority, type CaProfile, DAY, MINUTE } from './authority.js';
import type { CaState } from './state.js';
import { rootOfflineError, signCrlCommand } from './transitions.js';

/**
 * What `authority`'s CRL lists: entries it issued. Entries of an older store name no issuer;
 * they are leaves, listed by every intermediate (serials are random, so this harms nobody).
 */
function entriesOf(
  state: CaState,
  authority: { certificate: Authority['certificate'] },
  isRoot: boolean,
): x509.X509CrlEntryParams[] {
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

/** The root's CRL signed with `rootKey` (the offline root's, on the admin machine). */
export function signRootCrl(state: CaState, rootKey: PrivateKey, now: number, validityMs: number) {
  return signCrl(
    { key: rootKey, certificate: state.root.certificate },
    entriesOf(state, state.root, true),
    now,
    validityMs,
  );
}

/** The imported CRL of an offline root while it is current (signed by it), else CA_ROOT_OFFLINE. */
async function importedRootCrl(state: CaState, profile: CaProfile, now: number): Promise<string> {
  const pem = state.rootCrl;
  if (pem) {
    const crl = new x509.X509Crl(pem);
    const root = new x509.X509Certificate(state.root.certificate.der);
    const current = crl.thisUpdate.getTime() <= now && (crl.nextUpdate?.getTime() ?? 0) > now;
    if (current && (await crl.verify({ publicKey: root }, crypto))) return pem;
  }
  throw rootOfflineError(
    profile,
    `a current root CRL (${pem ? 'the imported one expired' : 'none imported'})`,
    signCrlCommand(profile),
  );
}

/** Every CRL a verifier that checks the whole chain needs, the intermediate's first, the root's second. */
export async function allCrls(state: CaState, profile: CaProfile, now: number): Promise<string[]> {
  const ms = validity(profile.leafLifetimeMs);
  const { key } = state.root;
  const out = [
    await signCrl(state.intermediate, entriesOf(state, state.intermediate, false), now, ms),
    key
      ? await signCrl(
          { key, certificate: state.root.certificate },
          entriesOf(state, state.root, true),
          now,
          ms,
        )
      : await importedRootCrl(state, profile, now),
  ];
  for (const retired of state.retired) {
    if (retired.certificate.info.notAfter.getTime() > now)
      out.push(await signCrl(retired, entriesOf(state, retired, false), now, ms));
  }
  if (state.previous)
    out.push(await signCrl(state.previous, entriesOf(state, state.previous, true), now, ms));
  return out;
}
