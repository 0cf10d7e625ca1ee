/**
 * The shape every consumer of trust reads: servers (accepted client CAs), outbound agents and
 * dispatchers (accepted server CAs) and gRPC credentials. A `TrustStore` is one producer; a fixed
 * list of PEMs is another (`staticTrust`). Consumers read `current()` when they build a context
 * and subscribe to be told of a new bundle; they never hold on to an older one.
 */
import { createHash } from 'node:crypto';
import { parseCertificatePems, toPem } from '../crypto/pem.js';

/** One immutable set of trust anchors. A new bundle is a new object with a higher `version`. */
export interface TrustBundle {
  /** Grows with every change; consumers compare it to skip rebuilding for nothing. */
  readonly version: number;
  /** The anchors as PEM certificates, one per entry, sorted by fingerprint. */
  readonly certificates: readonly string[];
  /** Lowercase hex SHA-256 of each anchor's DER, in the order of `certificates`. */
  readonly fingerprints: readonly string[];
}

/** Anything that can hand out the current bundle and say when it changes. */
export interface TrustBundleSource {
  current(): TrustBundle;
  /** Registers a listener for new bundles; returns the function that removes it. */
  subscribe(listener: (bundle: TrustBundle) => void): () => void;
}

/**
 * Builds a bundle from PEM texts (each may hold several certificates): de-duplicated by
 * fingerprint, sorted. Throws MALFORMED_PEM on anything that is not certificates.
 */
export function makeBundle(pems: readonly string[], version: number): TrustBundle {
  const byFingerprint = new Map<string, string>();
  for (const text of pems) {
    for (const der of parseCertificatePems(text, 'trust anchor')) {
      byFingerprint.set(createHash('sha256').update(der).digest('hex'), toPem('CERTIFICATE', der));
    }
  }
  const fingerprints = [...byFingerprint.keys()].sort();
  return { version, fingerprints, certificates: fingerprints.map((f) => byFingerprint.get(f) as string) };
}

/** A source whose bundle never changes, for a fixed CA list. */
export function staticTrust(pems: readonly string[]): TrustBundleSource {
  const fixed = makeBundle(pems, 1);
  return { current: () => fixed, subscribe: () => () => {} };
}
