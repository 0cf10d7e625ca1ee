/**
 * Expiry warnings: the thresholds of a certificate's lifetime (30/14/7 days for a 90-day
 * certificate, scaled for shorter ones; see policy.ts) and the moment it expires. Each crossed
 * threshold is announced once per generation (`state.warned` is reset with a new one).
 */
import type { ManagerCore } from './core.js';
import type { ResolvedOptions } from './options.js';
import { warningTimes } from './policy.js';
import { type CertState, servedFacts } from './state.js';

/** Every threshold of the served certificate with the time it is crossed (0 = expiry). */
export function expiryWarnings(
  state: CertState,
  policy: ResolvedOptions['policy'],
): { threshold: number; at: number }[] {
  const facts = servedFacts(state);
  if (!facts) return [];
  return [...warningTimes(facts, policy), { threshold: 0, at: facts.notAfter.getTime() }];
}

/** Emits the most severe newly crossed threshold once, marking milder ones as seen. */
export function emitExpiryWarnings(core: ManagerCore, state: CertState, now: number): void {
  const crossed = expiryWarnings(state, core.options.policy).filter(
    (w) => w.at <= now && !state.warned.has(w.threshold),
  );
  if (crossed.length === 0) return;
  for (const w of crossed) state.warned.add(w.threshold);
  const worst = crossed.reduce((a, b) => (a.threshold < b.threshold ? a : b));
  const facts = servedFacts(state)!;
  const remainingMs = facts.notAfter.getTime() - now;
  core.options.logger.warn('certificate is expiring', {
    id: state.cert.id,
    serial: facts.serial,
    remainingMs,
  });
  core.emit('expiring', {
    id: state.cert.id,
    serial: facts.serial,
    notAfter: facts.notAfter,
    remainingMs,
    threshold: worst.threshold,
  });
}
