/**
 * ACME certificate profiles (the CA advertises them as `meta.profiles` in its directory; Let's
 * Encrypt: `classic`, `tlsserver`, `shortlived`). A profile decides the lifetime and contents of
 * what is issued, so one asked for and not offered is an error at the first order, never a
 * silent order without it (a 90-day certificate where 6-day ones were configured, or the reverse).
 * The profile is chosen afresh from the same options for every order, renewals included.
 */
import { isIP } from 'node:net';
import { optionError } from '../../errors.js';

/** The profile Let's Encrypt requires for IP-address identifiers (6-day certificates). */
export const SHORT_LIVED = 'shortlived';

export function identifierType(name: string): 'ip' | 'dns' {
  return isIP(name.replace(/^\[|\]$/g, '')) !== 0 ? 'ip' : 'dns';
}

/** The profiles a directory advertises (names only), or null when it advertises none. */
export function advertisedProfiles(directory: { meta?: Record<string, unknown> }): string[] | null {
  const profiles = directory.meta?.profiles;
  if (typeof profiles !== 'object' || profiles === null || Array.isArray(profiles)) return null;
  return Object.keys(profiles);
}

/**
 * The profile for a new order: the configured one, checked against what the CA advertises; or,
 * none configured, `shortlived` for an order with an IP identifier when the CA offers it.
 */
export function chooseProfile(
  configured: string | undefined,
  names: readonly string[],
  directory: { meta?: Record<string, unknown> },
  directoryUrl: string,
): string | undefined {
  const offered = advertisedProfiles(directory);
  if (configured !== undefined) {
    if (offered?.includes(configured)) return configured;
    throw optionError(
      'profile',
      `"${configured}" is not offered by ${directoryUrl} (${
        offered && offered.length > 0 ? `it offers ${offered.join(', ')}` : 'it advertises no profiles'
      })`,
      'AcmeIssuer',
      { profile: configured, offered: offered ?? [], retryable: false },
    );
  }
  if (offered?.includes(SHORT_LIVED) && names.some((name) => identifierType(name) === 'ip'))
    return SHORT_LIVED;
  return undefined;
}
