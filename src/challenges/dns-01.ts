/**
 * DNS-01 (RFC 8555 §8.4): a TXT record `_acme-challenge.<name>` holding
 * base64url(SHA-256(key authorization)). The only challenge that proves wildcards. Records are
 * set through a `DnsProvider` (your DNS host's API); before the CA is told to look, the record
 * must be visible at the resolvers you name (your authoritative servers, ideally), polled until
 * a timeout, so a slow-propagating provider costs a wait, not a failed order.
 */
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertkeeperError, describeCause, optionError } from '../errors.js';
import type { IssuerContext } from '../issuers/issuer.js';
import type { ChallengeSolver, ChallengeTask } from './solver.js';

/** Your DNS host's API. Names are fully qualified without the trailing dot. */
export interface DnsProvider {
  setTxt(fqdn: string, value: string): Promise<void>;
  /** Removes one value; other values at the same name (a wildcard and its base) must survive. */
  removeTxt(fqdn: string, value: string): Promise<void>;
}

export interface Dns01Options {
  provider: DnsProvider;
  /** Resolvers (`host` or `host:port`) to check propagation against. Default: the system's. */
  resolvers?: string[];
  /** Give up waiting for the record after this long (default 120 s). */
  propagationTimeoutMs?: number;
  /** Delay between propagation checks (default 500 ms). */
  pollIntervalMs?: number;
  /** Skip the propagation check (when the provider's API already waits for it). */
  skipPropagationCheck?: boolean;
}

export function dns01Record(task: Pick<ChallengeTask, 'identifier'>): string {
  return `_acme-challenge.${task.identifier.value}`;
}

export function dns01Value(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization).digest('base64url');
}

export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01' as const;
  readonly #o: Required<Omit<Dns01Options, 'resolvers'>> & { resolvers?: string[] };

  constructor(options: Dns01Options) {
    if (
      !options?.provider ||
      typeof options.provider.setTxt !== 'function' ||
      typeof options.provider.removeTxt !== 'function'
    ) {
      throw optionError('provider', 'must implement setTxt and removeTxt', 'Dns01Solver');
    }
    this.#o = {
      provider: options.provider,
      resolvers: options.resolvers,
      propagationTimeoutMs: options.propagationTimeoutMs ?? 120_000,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      skipPropagationCheck: options.skipPropagationCheck ?? false,
    };
  }

  supports(identifier: ChallengeTask['identifier']): boolean {
    return identifier.type === 'dns';
  }

  async present(task: ChallengeTask, context: IssuerContext): Promise<void> {
    const fqdn = dns01Record(task);
    const value = dns01Value(task.keyAuthorization);
    await this.#o.provider.setTxt(fqdn, value);
    if (!this.#o.skipPropagationCheck) await this.#waitVisible(fqdn, value, context.signal);
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    await this.#o.provider.removeTxt(dns01Record(task), dns01Value(task.keyAuthorization));
  }

  async #waitVisible(fqdn: string, value: string, signal: AbortSignal): Promise<void> {
    const resolver = new Resolver({ timeout: 2_000, tries: 1 });
    if (this.#o.resolvers) resolver.setServers(this.#o.resolvers);
    const servers = () => (this.#o.resolvers ?? resolver.getServers()).join(', ');
    // A given-up attempt ends the wait at once, with a typed error: a query in flight is cancelled.
    const cancel = () => resolver.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    const deadline = Date.now() + this.#o.propagationTimeoutMs;
    let last = 'no answer';
    try {
      for (;;) {
        if (signal.aborted) break;
        try {
          const records = await resolver.resolveTxt(fqdn);
          if (records.some((chunks) => chunks.join('') === value)) return;
          last = `${records.length} other TXT value(s)`;
        } catch (error) {
          last = (error as NodeJS.ErrnoException).code ?? describeCause(error);
        }
        if (signal.aborted) break;
        if (Date.now() + this.#o.pollIntervalMs > deadline) {
          throw new CertkeeperError(
            'CHALLENGE_FAILED',
            `dns-01: TXT ${fqdn} not visible at ${servers()} after ${this.#o.propagationTimeoutMs} ms (${last})`,
            { details: { fqdn, last } },
          );
        }
        await sleep(this.#o.pollIntervalMs, undefined, { signal }).catch(() => {});
      }
    } finally {
      signal.removeEventListener('abort', cancel);
    }
    throw new CertkeeperError(
      'CHALLENGE_FAILED',
      `dns-01: gave up waiting for TXT ${fqdn} to be visible at ${servers()}: the attempt was aborted (${last})`,
      { details: { fqdn, last, aborted: true } },
    );
  }
}
