/**
 * Which configuration a stored certificate belongs to. The id is a certificate's identity in the
 * store; its pointer records the names, key type and purpose it was made for. A replica finding
 * its id stored under other facts is either a deliberate configuration change or a second
 * configuration claiming the same id in a shared store, and those two cannot be told apart from
 * one pointer. The rule that keeps both workable without a flip-flop:
 *
 *   - at start-up, a different configuration stored under the id is a change: this one replaces
 *     it (at once, serving the stored certificate meanwhile only if it is valid for this one);
 *   - a running replica never replaces what another configuration committed after it started:
 *     it adopts that certificate when it is valid for its own configuration (same key type and
 *     purpose, names covered), and otherwise refuses to obtain (`CERTIFICATE_CONFLICT`, not
 *     retryable), keeping what it serves until an operator gives one of them another id or
 *     restarts it with the configuration meant to win.
 */
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CertificateConfig } from './options.js';
import type { GenerationMeta } from './records.js';

type Facts = Pick<GenerationMeta, 'id' | 'names' | 'keyType' | 'purpose'>;

/** A comparable digest of a configuration's facts (name order does not matter). */
export function factsKey(facts: Facts): string {
  return JSON.stringify([facts.id, [...facts.names].sort(), facts.keyType, facts.purpose]);
}

/** Whether a pointer was written for this configuration. */
export function sameFacts(meta: Facts, cert: CertificateConfig): boolean {
  return factsKey(meta) === factsKey(cert);
}

/** Whether a certificate made for `meta` may be served by `cert` (names are checked by validation). */
export function compatibleFacts(meta: Facts, cert: CertificateConfig): boolean {
  return meta.id === cert.id && meta.keyType === cert.keyType && meta.purpose === cert.purpose;
}

export function describeFacts(facts: Facts): string {
  return `names ${facts.names.join(', ')}; key type ${facts.keyType}; purpose ${facts.purpose}`;
}

export function conflictError(cert: CertificateConfig, stored: GenerationMeta): CertkeeperError {
  return new CertkeeperError(
    'CERTIFICATE_CONFLICT',
    `certificate "${cert.id}" is stored for another configuration (${describeFacts(stored)}), ` +
      `committed at ${stored.storedAt}; this one (${describeFacts(cert)}) does not replace it while running. ` +
      'Two configurations sharing a store need different ids; after a deliberate change, restart the replicas that still run the old one',
    {
      details: {
        id: cert.id,
        stored: { names: stored.names, keyType: stored.keyType, purpose: stored.purpose },
        retryable: false,
      },
    },
  );
}

/**
 * At start-up: a pointer stored for other facts is a configuration change (or a second
 * configuration claiming the id), which this one replaces: returns the stored facts' key (the
 * certificate is renewed at once), or undefined when the pointer is this configuration's.
 */
export function claimAtStart(
  cert: CertificateConfig,
  stored: GenerationMeta,
  logger: Logger,
): string | undefined {
  if (sameFacts(stored, cert)) return undefined;
  logger.warn('stored certificate was made for another configuration of this id; replacing it', {
    id: cert.id,
    stored: describeFacts(stored),
    configured: describeFacts(cert),
  });
  return factsKey(stored);
}
