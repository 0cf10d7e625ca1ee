/**
 * The manager's events: stable names, plain-data payloads, no key material (only ids, names,
 * serials, fingerprints, times and typed errors). The same facts are in `status()`.
 */
import type { CertkeeperError } from '../errors.js';
import type { NameValidation } from '../issuers/issuer.js';

export type ObtainReason = 'missing' | 'renewal' | 'expired' | 'forced' | 'healing' | 'retry';

export interface ManagerEvents {
  /** A valid certificate was found in the store at start-up and is being served. */
  loaded: [{ id: string; serial: string; notAfter: Date; issuer: string }];
  /**
   * A stored entry is damaged or does not fit its configuration; it is never served (an intact
   * generation still stored is, else the certificate is re-issued).
   */
  storedInvalid: [{ id: string; error: CertkeeperError }];
  obtaining: [{ id: string; names: string[]; reason: ObtainReason; attempt: number }];
  /** The first certificate for an id (nothing was served before). */
  obtained: [
    {
      id: string;
      serial: string;
      notAfter: Date;
      issuer: string;
      durationMs: number;
      /** This replica: it held the issuance lock for the order. */
      replica: string;
      /** How each name was validated (ACME: the challenge type, or a reused authorization). */
      validation: NameValidation[];
    },
  ];
  /** A certificate replaced a previous one. */
  renewed: [
    {
      id: string;
      serial: string;
      previousSerial: string;
      notAfter: Date;
      issuer: string;
      durationMs: number;
      replica: string;
      validation: NameValidation[];
    },
  ];
  /** Another replica obtained a newer certificate; this process adopted it. */
  adopted: [{ id: string; serial: string; notAfter: Date }];
  renewalFailed: [
    { id: string; error: CertkeeperError; attempt: number; retryAt: Date; servingSerial: string | null },
  ];
  /** A warning threshold of the lifetime was crossed (`remainingMs` ≤ 0 means expired). */
  expiring: [{ id: string; serial: string; notAfter: Date; remainingMs: number; threshold: number }];
  /**
   * The deploy targets (attached servers, `targets`) now serve `serial`: `targets` names those
   * that took it, `servers` counts them, `verified` counts those a live check confirmed.
   */
  swapped: [
    {
      id: string;
      serial: string;
      previousSerial: string | null;
      servers: number;
      verified: number;
      targets: string[];
      /** Apply and verify on every target, by the manager's clock. */
      durationMs: number;
    },
  ];
  /**
   * A new certificate was refused or undone; `servingSerial` is what is served instead. After a
   * failed deploy, `target` names the (first) target that failed and `targets` those put back.
   */
  rolledBack: [
    {
      id: string;
      reason: CertkeeperError;
      rejectedSerial: string | null;
      servingSerial: string | null;
      target?: string;
      targets?: string[];
    },
  ];
  /** A deploy target refused the certificate or its live check saw another one. */
  liveVerifyFailed: [{ id: string; error: CertkeeperError; expected: string; target: string }];
  revoked: [{ id: string; serial: string; reason: string }];
}

export type ManagerEventName = keyof ManagerEvents;
