/**
 * DNS-01 (RFC 8555 §8.4): a TXT record `_acme-challenge.<name>` holding
 * base64url(SHA-256(key authorization)). The only challenge that proves wildcards. Records are
 * set through a `DnsProvider` (your DNS host's API, or `Rfc2136Provider` for a server taking
 * dynamic updates); before the CA is told to look, the record must be visible at every
 * authoritative server of its zone (or at the resolvers you name), polled until a timeout, so a
 * slow-propagating provider costs a wait, not a failed order.
 */
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertkeeperError, describeCause, isCertkeeperError, optionError } from '../errors.js';
import {
  type AuthoritativeLookup,
  authoritativeServers,
  authoritativeTxt,
  formatServer,
} from './dns-propagation.js';
import type { ChallengeContext, ChallengeSolver, ChallengeTask } from './solver.js';

/**
 * Your DNS host's API. Names are fully qualified without the trailing dot. Throw on failure (a
 * CertkeeperError, or any Error: its message, scrubbed of anything key-like, becomes a
 * CHALLENGE_FAILED); never resolve before the host has accepted the change.
 */
export interface DnsProvider {
  setTxt(fqdn: string, value: string): Promise<void>;
  /** Removes one value; other values at the same name (a wildcard and its base) must survive. */
  removeTxt(fqdn: string, value: string): Promise<void>;
}

/** Options of `Dns01Solver`. */
export interface Dns01Options {
  provider: DnsProvider;
  /**
   * Resolvers (`host` or `host:port`) to check propagation against instead of the zone's
   * authoritative servers (when those cannot be reached from here, e.g. split-horizon DNS).
   */
  resolvers?: string[];
  /**
   * How the zone's authoritative servers are found (the default check): the resolvers to look
   * their NS records and addresses up with (default: the system's) and the port they answer on
   * (default 53). When they cannot be found, the system's resolvers are checked instead.
   */
  authoritative?: AuthoritativeLookup;
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

/** Answers DNS-01 challenges by publishing TXT records through a `DnsProvider`, then waiting until they are visible. */
export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01' as const;
  readonly #o: Required<Omit<Dns01Options, 'resolvers' | 'authoritative'>> &
    Pick<Dns01Options, 'resolvers' | 'authoritative'>;

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
      authoritative: options.authoritative,
      propagationTimeoutMs: options.propagationTimeoutMs ?? 120_000,
      pollIntervalMs: options.pollIntervalMs ?? 500,
      skipPropagationCheck: options.skipPropagationCheck ?? false,
    };
  }

  supports(identifier: ChallengeTask['identifier']): boolean {
    return identifier.type === 'dns';
  }

  async present(task: ChallengeTask, context: ChallengeContext): Promise<void> {
    const fqdn = dns01Record(task);
    const value = dns01Value(task.keyAuthorization);
    await this.#call('setTxt', fqdn, value);
    if (this.#o.skipPropagationCheck) return;
    if (this.#o.resolvers) return this.#waitResolvers(fqdn, value, this.#o.resolvers, context.signal);
    let zone: Awaited<ReturnType<typeof authoritativeServers>>;
    try {
      zone = await authoritativeServers(fqdn, this.#o.authoritative);
    } catch (error) {
      context.logger.warn(
        'dns-01: the authoritative servers could not be found; checking the system resolvers',
        {
          fqdn,
          error: describeCause(error),
        },
      );
      return this.#waitResolvers(fqdn, value, undefined, context.signal);
    }
    await this.#waitAuthoritative(fqdn, value, zone, context);
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    await this.#call('removeTxt', dns01Record(task), dns01Value(task.keyAuthorization));
  }

  /** A provider call; its own errors become CHALLENGE_FAILED with their (scrubbed) message only. */
  async #call(method: 'setTxt' | 'removeTxt', fqdn: string, value: string): Promise<void> {
    try {
      await this.#o.provider[method](fqdn, value);
    } catch (error) {
      if (isCertkeeperError(error)) throw error;
      throw new CertkeeperError(
        'CHALLENGE_FAILED',
        `dns-01: the DNS provider's ${method} for ${fqdn} failed: ${describeCause(error)}`,
        { details: { fqdn, step: method } },
      );
    }
  }

  /** Until every authoritative server answers with the value. */
  async #waitAuthoritative(
    fqdn: string,
    value: string,
    zone: { zone: string; servers: { host: string; port: number }[] },
    context: ChallengeContext,
  ): Promise<void> {
    const deadline = Date.now() + this.#o.propagationTimeoutMs;
    const pending = new Map(zone.servers.map((server) => [formatServer(server), server]));
    const last = new Map<string, string>();
    for (;;) {
      await Promise.all(
        [...pending].map(async ([name, server]) => {
          try {
            const values = await authoritativeTxt(server, fqdn);
            if (values.includes(value)) pending.delete(name);
            else
              last.set(
                name,
                values.length === 0 ? 'no TXT record yet' : `${values.length} other TXT value(s)`,
              );
          } catch (error) {
            last.set(name, describeCause(error));
          }
        }),
      );
      if (pending.size === 0) return;
      const missing = [...pending.keys()].map((name) => `${name}: ${last.get(name)}`);
      context.logger.debug('dns-01: waiting for the authoritative servers', {
        fqdn,
        zone: zone.zone,
        missing,
      });
      if (Date.now() + this.#o.pollIntervalMs > deadline) {
        throw new CertkeeperError(
          'CHALLENGE_FAILED',
          `dns-01: TXT ${fqdn} not at every authoritative server of ${zone.zone} after ${this.#o.propagationTimeoutMs} ms (${missing.join('; ')})`,
          { details: { fqdn, zone: zone.zone, missing } },
        );
      }
      await sleep(this.#o.pollIntervalMs, undefined, { signal: context.signal });
    }
  }

  async #waitResolvers(
    fqdn: string,
    value: string,
    resolvers: string[] | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const resolver = new Resolver({ timeout: 2_000, tries: 1 });
    if (resolvers) resolver.setServers(resolvers);
    const servers = () => (resolvers ?? resolver.getServers()).join(', ');
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
