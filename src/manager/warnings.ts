/**
 * Expiry warnings: the thresholds of a certificate's lifetime (30/14/7 days for a 90-day
 * certificate, scaled for shorter ones; see policy.ts) and the moment it expires. Each crossed
 * threshold is announced once per generation (managed-certificate.ts forgets what it announced
 * with a new one).
 */
import type { ResolvedOptions } from './options.js';
import { warningTimes } from './policy.js';

/** Every threshold of the served certificate with the time it is crossed (0 = expiry). */
export function expiryWarnings(
  facts: { notBefore: Date; notAfter: Date } | undefined,
  policy: ResolvedOptions['policy'],
): { threshold: number; at: number }[] {
  if (!facts) return [];
  return [...warningTimes(facts, policy), { threshold: 0, at: facts.notAfter.getTime() }];
}
