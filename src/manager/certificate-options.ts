/**
 * One certificate's options (`certificates[i]`, `manage()`), validated eagerly: every message
 * names the option (`certificates[1].names[0]`), as the manager's own options do.
 */
import { DEFAULT_KEY_TYPE, isKeyType, KEY_TYPES, type KeyType } from '../crypto/keys.js';
import { parseNames } from '../crypto/names.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import type { CertificatePurpose, Issuer } from '../issuers/issuer.js';
import { certificateSegment } from '../store/layout.js';

/** An INVALID_OPTION error of the manager's options, named from `options.`. */
export function optionError(path: string, message: string): CertkeeperError {
  return new CertkeeperError('INVALID_OPTION', `options.${path} ${message}`, { details: { option: path } });
}

export interface ManagedCertificateOptions {
  /** Stable id for events, status and `renewNow`. Default: the first name. */
  id?: string;
  /** DNS names, wildcards and IP addresses; the first is the primary name. */
  names: string[];
  /** Default `ec-p256`. */
  keyType?: KeyType;
  /** Default `server`. */
  purpose?: CertificatePurpose;
  /**
   * The issuer(s) of this certificate, tried in order: ids, or the objects themselves, among the
   * manager's `issuer` list (default: every issuer of the list, in its order). One manager can so
   * mix issuers, e.g. a FileSourceIssuer for one certificate and a CA for another. Its stored
   * certificate is looked up under these issuers only.
   */
  issuer?: string | Issuer | (string | Issuer)[];
  /**
   * The CA profile to order it under (ACME: `tlsserver`, `shortlived`, …), over the issuer's own
   * `profile`; checked against what the CA advertises at the first order. Issuers without
   * profiles ignore it.
   */
  profile?: string;
}

const CERTIFICATE_OPTIONS: readonly (keyof ManagedCertificateOptions)[] = [
  'id',
  'names',
  'keyType',
  'purpose',
  'issuer',
  'profile',
];

export interface CertificateConfig {
  id: string;
  names: string[];
  primary: string;
  keyType: KeyType;
  purpose: CertificatePurpose;
  /** The ids of the issuers chosen for it (`issuer`), in order; absent: every issuer. */
  issuers?: string[];
  profile?: string;
}

export function resolveCertificate(input: unknown, path: string, issuers: Issuer[]): CertificateConfig {
  if (typeof input !== 'object' || input === null) throw optionError(path, 'must be an object');
  const cert = input as ManagedCertificateOptions;
  refuseUnknown(cert, CERTIFICATE_OPTIONS, path);
  if (!Array.isArray(cert.names) || cert.names.length === 0)
    throw optionError(`${path}.names`, 'must be a non-empty array');
  let names: string[];
  try {
    names = parseNames(cert.names).map((n) => n.value);
  } catch (error) {
    const index = cert.names.findIndex((n) => {
      try {
        parseNames([n]);
        return false;
      } catch {
        return true;
      }
    });
    throw optionError(
      `${path}.names[${index}]`,
      isCertkeeperError(error) ? `is invalid: ${error.message}` : 'is invalid',
    );
  }
  const keyType = cert.keyType ?? DEFAULT_KEY_TYPE;
  if (!isKeyType(keyType)) throw optionError(`${path}.keyType`, `must be one of ${KEY_TYPES.join(', ')}`);
  const purpose = cert.purpose ?? 'server';
  if (purpose !== 'server' && purpose !== 'client')
    throw optionError(`${path}.purpose`, "must be 'server' or 'client'");
  const chosen =
    cert.issuer === undefined ? undefined : chooseIssuers(cert.issuer, `${path}.issuer`, issuers);
  const candidates = chosen ?? issuers;
  const unable = candidates.filter((i) => i.supportsPurpose && !i.supportsPurpose(purpose));
  if (unable.length === candidates.length) {
    throw optionError(
      `${path}.purpose`,
      `is '${purpose}', which no configured issuer can issue (${unable.map((i) => i.id).join(', ')})` +
        // Public ACME CAs stopped issuing clientAuth certificates (docs/platform.md, "ACME"): say where to go.
        (purpose === 'client'
          ? ': client certificates need a private CA (InternalCA, StepCaIssuer, or AcmeIssuer with clientAuth: true for a private ACME CA)'
          : ''),
    );
  }
  if (
    cert.profile !== undefined &&
    !(typeof cert.profile === 'string' && /^[\x21-\x7e]{1,100}$/.test(cert.profile))
  )
    throw optionError(`${path}.profile`, 'must be a profile name (1-100 printable characters)');
  const id = cert.id ?? names[0]!;
  if (typeof id !== 'string' || id.length === 0 || id.length > 200)
    throw optionError(`${path}.id`, 'must be a non-empty string');
  // The id is the certificate's identity in the store: it must map to one key, and back.
  try {
    certificateSegment(id);
  } catch (error) {
    throw optionError(
      `${path}.id`,
      `${cert.id === undefined ? '(by default the first name) ' : ''}cannot be stored: ${(error as Error).message}`,
    );
  }
  return {
    id,
    names,
    primary: names[0]!,
    keyType,
    purpose,
    ...(chosen ? { issuers: chosen.map((i) => i.id) } : {}),
    ...(cert.profile !== undefined ? { profile: cert.profile } : {}),
  };
}

/** A certificate's `issuer` option: each an id or an object of the manager's issuers, no repeats. */
function chooseIssuers(input: unknown, path: string, issuers: Issuer[]): Issuer[] {
  const list: unknown[] = Array.isArray(input) ? input : [input];
  const known = issuers.map((i) => JSON.stringify(i.id)).join(', ');
  if (list.length === 0) throw optionError(path, `must name at least one issuer (known: ${known})`);
  const chosen = list.map((entry, i) => {
    const at = Array.isArray(input) ? `${path}[${i}]` : path;
    if (typeof entry === 'string') {
      const found = issuers.find((issuer) => issuer.id === entry);
      if (!found)
        throw optionError(
          at,
          `names no issuer of the manager: ${JSON.stringify(entry.slice(0, 80))} (known: ${known})`,
        );
      return found;
    }
    if (typeof entry === 'object' && entry !== null && issuers.includes(entry as Issuer))
      return entry as Issuer;
    throw optionError(
      at,
      `must be the id (a string) or the object of one of the manager's issuers (known: ${known})`,
    );
  });
  if (new Set(chosen).size !== chosen.length) throw optionError(path, 'names an issuer twice');
  return chosen;
}

/** Refuses keys of `input` that are not options: a misspelt one would silently keep a default. */
export function refuseUnknown(input: object, known: readonly string[], path: string): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      throw optionError(path ? `${path}.${key}` : key, `is not an option (known: ${known.join(', ')})`);
    }
  }
}
