/**
 * A DnsProvider for pebble-challtestsrv's management API: it serves certkeeper's tests, and it
 * is the smallest complete example of a provider. A provider for a real DNS host has the same
 * shape: authenticate, add a TXT record, remove exactly that record.
 *
 * challtestsrv can only clear *all* TXT values of a name, so this provider remembers the values
 * it set per name and puts the others back after a removal: a wildcard and its base name share
 * `_acme-challenge.<base>` and may be validated at the same time.
 */
import { CertkeeperError, describeCause } from '../../errors.js';
import type { DnsProvider } from '../dns-01.js';

export class ChallTestSrvProvider implements DnsProvider {
  readonly #url: string;
  readonly #values = new Map<string, string[]>();
  #queue: Promise<unknown> = Promise.resolve();

  /** `url`: the management address, e.g. `http://127.0.0.1:8055`. */
  constructor(url: string) {
    this.#url = url.replace(/\/$/, '');
  }

  setTxt(fqdn: string, value: string): Promise<void> {
    return this.#serial(async () => {
      this.#values.set(fqdn, [...(this.#values.get(fqdn) ?? []), value]);
      await this.#post('/set-txt', { host: `${fqdn}.`, value });
    });
  }

  removeTxt(fqdn: string, value: string): Promise<void> {
    return this.#serial(async () => {
      const rest = (this.#values.get(fqdn) ?? []).filter((v) => v !== value);
      this.#values.set(fqdn, rest);
      await this.#post('/clear-txt', { host: `${fqdn}.` });
      for (const v of rest) await this.#post('/set-txt', { host: `${fqdn}.`, value: v });
    });
  }

  /** One API call at a time, so a clear-and-restore never interleaves with a set. */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #post(path: string, body: unknown): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.#url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    } catch (error) {
      throw new CertkeeperError(
        'CHALLENGE_FAILED',
        `challtestsrv ${path} unreachable: ${describeCause(error)}`,
      );
    }
    if (!response.ok)
      throw new CertkeeperError('CHALLENGE_FAILED', `challtestsrv ${path} answered ${response.status}`);
  }
}
