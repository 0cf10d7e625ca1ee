/**
 * What the manager's modules share: the resolved options and the few internal operations that
 * change a certificate's state. `CertificateManager` is the only implementation; the interface
 * lets attempt.ts, adoption.ts and deploy.ts live in their own files without reaching into private fields.
 */
import type { EventEmitter } from 'eventemitter3';
import type { DeployTarget } from '../deploy/target.js';
import type { CertkeeperError } from '../errors.js';
import type { Issuer, IssuerContext } from '../issuers/issuer.js';
import type { ManagerEvents } from './events.js';
import type { ManagedCertificate, ResolvedOptions } from './options.js';
import type { Generation, GenerationMeta } from './records.js';
import type { CertState } from './state.js';

export type Meta = Omit<GenerationMeta, 'previous'>;

export interface ManagerCore {
  readonly options: ResolvedOptions;
  /** Every deploy target: attached servers and the configured or added targets. */
  targets(): DeployTarget[];
  readonly emit: EventEmitter<ManagerEvents>['emit'];
  running(): boolean;
  issuersFor(cert: ManagedCertificate): Issuer[];
  /** The first problem of a bundle for `cert`, or null (anchors: fresh issuance only). */
  validate(
    cert: ManagedCertificate,
    generation: Pick<Generation, 'key' | 'chainPem'>,
    anchors?: string[],
    allowExpired?: boolean,
  ): CertkeeperError | null;
  /**
   * Makes `generation` current in memory and, with `apply`, on every target serving it (the
   * deploy path applies through deploy/deploy.ts instead); returns the replaced one.
   */
  install(state: CertState, generation: Generation, meta: Meta, apply?: boolean): Generation | undefined;
  planRenewal(state: CertState, fingerprint: string, validity: { notBefore: Date; notAfter: Date }): void;
  reschedule(state: CertState): void;
  succeeded(state: CertState): void;
  stopped(): boolean;
  /** Aborted when the manager stops. */
  readonly signal: AbortSignal;
  context(signal: AbortSignal): IssuerContext;
  /** Reads, checks and installs the stored generation of a certificate known only by its pointer. */
  materialize(state: CertState): Promise<Generation | undefined>;
}
