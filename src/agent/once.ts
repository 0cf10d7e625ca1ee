/**
 * `certkeeper agent --once`: load what the store holds, renew what is due, exit. For cron and
 * systemd timers. A certificate is due when it is missing or expired, or its planned renewal
 * (the manager's policy, an ACME CA's renewal window) has come. The exit code says what happened:
 *
 *   0  every certificate is valid and nothing due failed (the summary says what was renewed)
 *   1  a renewal failed, but every certificate still has a valid one (retried at the next run)
 *   3  a certificate is missing or expired after the run: attention needed
 *   (2: usage or an invalid configuration, as for every command)
 */
import { describeCause } from '../errors.js';
import type { Agent } from './agent.js';

export const ONCE_EXIT = { OK: 0, FAILED: 1, ATTENTION: 3 } as const;

export interface OnceReport {
  code: number;
  due: string[];
  renewed: string[];
  failed: { id: string; code: string }[];
  /** Missing or expired after the run. */
  attention: string[];
}

export async function renewDue(agent: Agent, now: () => number): Promise<OnceReport> {
  const at = now();
  const due = agent
    .status()
    .filter((s) => s.state !== 'valid' || (s.nextRenewalAt !== null && s.nextRenewalAt.getTime() <= at))
    .map((s) => s.id);
  const results = await Promise.allSettled(due.map((id) => agent.managerOf(id).renewNow(id)));
  const failed: OnceReport['failed'] = [];
  const renewed: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') renewed.push(due[i]!);
    else {
      const code = (r.reason as { code?: unknown })?.code;
      failed.push({ id: due[i]!, code: typeof code === 'string' ? code : describeCause(r.reason) });
    }
  });
  const attention = agent
    .status()
    .filter((s) => s.state !== 'valid')
    .map((s) => s.id);
  const code =
    attention.length > 0 ? ONCE_EXIT.ATTENTION : failed.length > 0 ? ONCE_EXIT.FAILED : ONCE_EXIT.OK;
  return { code, due, renewed, failed, attention };
}
