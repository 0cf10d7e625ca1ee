/**
 * An `OnDemandHost` built from one issuer and a store, for using on-demand issuance before (or
 * without) the manager: it orders with a fresh key and CSR, validates the answer against the
 * issuer's trust anchors, and commits the generation in the manager's store layout
 * (`certificates/<issuer>/@<id>/…`, id `on-demand:<name>`), every write fenced by the order lock.
 * Loading applies the same checks to what the store holds, so nothing is served from the store
 * that does not chain to the issuer, match its key and cover the name.
 */

import { untilAborted } from '../abort.js';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { createCsr } from '../crypto/csr.js';
import { parseCertificates } from '../crypto/inspect.js';
import { DEFAULT_KEY_TYPE, isKeyType, type KeyType, PrivateKey } from '../crypto/keys.js';
import { validateBundle } from '../crypto/validate.js';
import { CertkeeperError, isCertkeeperError, optionError } from '../errors.js';
import type { Issuer, IssuerContext } from '../issuers/issuer.js';
import { type Logger, silentLogger } from '../logger.js';
import {
  commitGeneration,
  deleteBelow,
  type Generation,
  loadGeneration,
  metaOf,
  readPointer,
} from '../manager/records.js';
import { layout } from '../store/layout.js';
import type { LockLease, Store, WriteOptions } from '../store/store.js';
import type { ObtainOptions, OnDemandCertificate, OnDemandHost } from './host.js';

export interface IssuerHostOptions {
  issuer: Issuer;
  store: Store;
  clock?: Clock;
  logger?: Logger;
  /** Key type of on-demand certificates. Default `ec-p256`. */
  keyType?: KeyType;
}

/** How long the issuer's trust anchors are reused before they are read again. */
const ANCHORS_TTL_MS = 60_000;

/** The certificate id an on-demand name is stored under. */
export function onDemandId(name: string): string {
  return `on-demand:${name}`;
}

export class IssuerHost implements OnDemandHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly issuer: Issuer;
  readonly keyType: KeyType;
  #anchors: { at: number; list: string[] } | undefined;

  constructor(options: IssuerHostOptions) {
    if (typeof options?.issuer?.issue !== 'function')
      throw optionError('issuer', 'must be an Issuer', 'IssuerHost');
    if (typeof options.store?.get !== 'function') throw optionError('store', 'must be a Store', 'IssuerHost');
    this.keyType = options.keyType ?? DEFAULT_KEY_TYPE;
    if (!isKeyType(this.keyType)) throw optionError('keyType', 'must be a supported key type', 'IssuerHost');
    this.issuer = options.issuer;
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.issuer.bind?.({ store: this.store });
  }

  async obtain(
    name: string,
    { signal, lease, current, onIssued }: ObtainOptions,
  ): Promise<OnDemandCertificate> {
    const key = await PrivateKey.generate(this.keyType);
    const csr = await createCsr({ key, names: [name] });
    const context = this.#context(signal);
    const id = onDemandId(name);
    const issued = await untilAborted(
      this.issuer.issue(
        {
          id,
          names: [name],
          purpose: 'server',
          keyType: this.keyType,
          key,
          csr,
          current: current && { chainPem: current.chainPem, key: current.key, info: current.info },
        },
        context,
      ),
      signal,
      () => new CertkeeperError('ISSUER_UNAVAILABLE', `issuer ${this.issuer.id} did not answer in time`),
    );
    const chain = parseCertificates(issued.chainPem, `certificate from ${this.issuer.id}`);
    const generation: Generation = {
      issuer: this.issuer.id,
      chainPem: chain.map((c) => c.pem).join(''),
      key: issued.key ?? key,
      info: chain[0]!.info,
      chain: chain.map((c) => c.info),
      storedAt: this.clock.now(),
    };
    const problem = await this.#problem(name, generation, context);
    if (problem) throw problem;
    onIssued?.(generation);
    const previous = await readPointer(this.store, this.issuer.id, id).catch(() => null);
    const meta = metaOf(
      generation,
      { id, names: [name], keyType: this.keyType, purpose: 'server' },
      generation.storedAt,
    );
    await commitGeneration(fenced(this.store, lease), id, generation, meta, previous, { lease: signal });
    return generation;
  }

  async load(name: string, signal: AbortSignal): Promise<OnDemandCertificate | null> {
    const id = onDemandId(name);
    try {
      const pointer = await readPointer(this.store, this.issuer.id, id);
      if (!pointer) return null;
      const generation = await loadGeneration(this.store, this.issuer.id, id, pointer);
      const problem = await this.#problem(name, generation, this.#context(signal));
      if (!problem) return generation;
      this.logger.warn('stored on-demand certificate not served', { name, code: problem.code });
      return null;
    } catch (error) {
      // Damage is healed by ordering again; a store that cannot be read now is not damage.
      if (isCertkeeperError(error, 'STORE_CORRUPT') || isCertkeeperError(error, 'MALFORMED_PEM')) {
        this.logger.warn('stored on-demand certificate damaged', { name, code: error.code });
        return null;
      }
      throw error;
    }
  }

  async remove(name: string, lease: LockLease): Promise<void> {
    const keys = layout.certificate(this.issuer.id, onDemandId(name));
    await deleteBelow(fenced(this.store, lease), keys.dir);
  }

  #context(signal: AbortSignal): IssuerContext {
    return { store: this.store, clock: this.clock, logger: this.logger, signal };
  }

  /**
   * The first reason not to serve `generation` for `name` now, or null. The issuer's anchors are
   * kept for `ANCHORS_TTL_MS` (reading them costs store reads on the handshake's path); a chain
   * they do not accept is checked once more against freshly read anchors, so a root rotation is
   * never refused because of the copy.
   */
  async #problem(name: string, generation: Pick<Generation, 'key' | 'chainPem'>, context: IssuerContext) {
    const cached = this.#anchors && this.clock.now() - this.#anchors.at < ANCHORS_TTL_MS;
    let verdict = this.#verdict(name, generation, await this.#trustAnchors(context, !cached));
    if (!verdict.ok && cached && verdict.problems.some((p) => p.code === 'UNTRUSTED_ROOT'))
      verdict = this.#verdict(name, generation, await this.#trustAnchors(context, true));
    return verdict.ok ? null : verdict.error;
  }

  async #trustAnchors(context: IssuerContext, fresh: boolean): Promise<string[]> {
    if (!fresh && this.#anchors) return this.#anchors.list;
    const list = this.issuer.trustAnchors ? await this.issuer.trustAnchors(context) : [];
    this.#anchors = { at: this.clock.now(), list };
    return list;
  }

  #verdict(name: string, generation: Pick<Generation, 'key' | 'chainPem'>, anchors: string[]) {
    return validateBundle({
      key: generation.key,
      chain: generation.chainPem,
      names: [name],
      purpose: 'server',
      trustAnchors: anchors.length > 0 ? anchors : undefined,
      now: new Date(this.clock.now()),
    });
  }
}

/** `store` with every write fenced by `lease` (see "Fenced writes" in store.ts). */
function fenced(store: Store, lease: LockLease): Store {
  const fence: WriteOptions = { fence: lease };
  return {
    get: (key) => store.get(key),
    put: (key, value) => store.put(key, value, fence),
    delete: (key) => store.delete(key, fence),
    list: (prefix) => store.list(prefix),
    stat: (key) => store.stat(key),
    lock: (n, o) => store.lock(n, o),
    tryLock: (n, o) => store.tryLock(n, o),
    renewLock: (l, t) => store.renewLock(l, t),
    unlock: (l) => store.unlock(l),
    close: () => store.close(),
  };
}
