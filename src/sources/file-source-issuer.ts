/**
 * Certificates another tool writes (certbot, a Kubernetes secret, Docker secrets) as an issuer
 * of the manager, so they are served, swapped, live-checked and rolled back like any other, and
 * mixed with other issuers in one manager. The Issuer contract lets an issuer return the key the
 * certificate is for (`IssuedCertificate.key`): `issue` returns the pair the files hold. The key
 * and CSR the manager made for the request go unused (an external tool brings its own key).
 *
 * The manager asks when it plans a renewal; the tool that writes the files decides when there is
 * a new certificate. `follow` tells the manager as soon as the files hold a new valid pair
 * (`renewNow`). When the files still hold the certificate being served, `issue` fails with a
 * retryable ISSUER_UNAVAILABLE, so nothing is reported renewed when nothing changed and the
 * manager asks again on its retry schedule.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CertkeeperError, isCertkeeperError, optionError } from '../errors.js';
import type {
  CertificatePurpose,
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
} from '../issuers/issuer.js';
import type { Logger } from '../logger.js';
import { type PairFiles, readPair } from './file-pair.js';
import { FileWatch, type FileWatchOptions } from './file-source.js';

export interface FileSourceIssuerOptions {
  /** Store identity of the certificates it provides. */
  id: string;
  /** Path of the chain file (leaf first); `{id}` is replaced by the certificate's id. */
  chain: string;
  /** Path of the private key file; `{id}` is replaced by the certificate's id. */
  key: string;
  /** Reads of a pair that is not valid yet, before `issue` gives up (default 5, 200 ms apart). */
  attempts?: number;
  /**
   * The purposes of the certificates it provides (default both). In a manager that mixes it with
   * a CA, `['server']` keeps the CA alone for client certificates.
   */
  purposes?: CertificatePurpose[];
}

/** What `follow` needs of a manager. */
export interface FollowedManager {
  renewNow(id: string): Promise<void>;
  certificate(id: string): { fingerprint256: string } | null;
}

const ID_TOKEN = /\{id\}/g;

export class FileSourceIssuer implements Issuer {
  readonly id: string;
  readonly #chain: string;
  readonly #key: string;
  readonly #attempts: number;
  readonly #purposes: readonly CertificatePurpose[];

  constructor(options: FileSourceIssuerOptions) {
    const invalid = (option: string, problem: string) => optionError(option, problem, 'FileSourceIssuer');
    if (typeof options?.id !== 'string' || options.id === '')
      throw invalid('id', 'must be a non-empty string');
    if (typeof options.chain !== 'string' || options.chain === '')
      throw invalid('chain', 'must be a file path');
    if (typeof options.key !== 'string' || options.key === '') throw invalid('key', 'must be a file path');
    if (options.chain === options.key)
      throw invalid('key', 'is the chain file: give the certificate and its key as two files');
    this.id = options.id;
    this.#chain = options.chain;
    this.#key = options.key;
    this.#attempts = options.attempts ?? 5;
    if (!Number.isInteger(this.#attempts) || this.#attempts < 1)
      throw invalid('attempts', 'must be an integer of at least 1');
    this.#purposes = options.purposes ?? ['server', 'client'];
    if (
      !Array.isArray(this.#purposes) ||
      this.#purposes.length === 0 ||
      this.#purposes.some((p) => p !== 'server' && p !== 'client')
    )
      throw invalid('purposes', "must list 'server', 'client' or both");
  }

  /** The files of certificate `id`. */
  files(id: string): PairFiles {
    return { chain: this.#chain.replace(ID_TOKEN, id), key: this.#key.replace(ID_TOKEN, id) };
  }

  supportsPurpose(purpose: CertificatePurpose): boolean {
    return this.#purposes.includes(purpose);
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    const files = this.files(request.id);
    let lastError: CertkeeperError | undefined;
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      if (attempt > 0) await sleep(200, undefined, { signal: context.signal });
      try {
        const pair = await readPair(files, context.clock.now());
        if (request.current && pair.fingerprint256 === request.current.info.fingerprint256)
          throw new CertkeeperError(
            'ISSUER_UNAVAILABLE',
            `${files.chain} still holds the certificate served (serial ${pair.serial}): waiting for the tool that writes it`,
            { details: { chainFile: files.chain, keyFile: files.key, unchanged: true, retryable: true } },
          );
        return { chainPem: pair.chainPem, key: pair.key };
      } catch (error) {
        if (!isCertkeeperError(error) || error.details.unchanged) throw error;
        lastError = error;
      }
    }
    throw lastError!;
  }

  /** A watch of the files of certificate `id` (started by the caller). */
  watch(id: string, options?: FileWatchOptions): FileWatch {
    return new FileWatch(id, this.files(id), options);
  }

  /**
   * Keeps `manager` serving what the files of each of `ids` hold: at once if they already hold
   * another certificate than the one served, then at each change. Returns a function that stops.
   */
  async follow(
    manager: FollowedManager,
    ids: readonly string[],
    options: FileWatchOptions & { logger?: Logger } = {},
  ): Promise<() => void> {
    const watches = ids.map((id) => this.watch(id, options));
    const renew = (id: string) =>
      manager.renewNow(id).catch((error) =>
        options.logger?.warn('could not serve the certificate written to the files', {
          id,
          code: isCertkeeperError(error) ? error.code : undefined,
          error,
        }),
      );
    for (const w of watches) {
      w.on('changed', (e) => {
        options.logger?.info('files hold a new certificate', { ...e });
        void renew(e.id);
      });
      w.on('pending', (e) =>
        options.logger?.warn('files are not a valid certificate and key (yet)', { ...e }),
      );
      const baseline = await w.start();
      if (baseline && manager.certificate(w.id)?.fingerprint256 !== baseline.fingerprint256) void renew(w.id);
    }
    return () => {
      for (const w of watches) w.close();
    };
  }
}
