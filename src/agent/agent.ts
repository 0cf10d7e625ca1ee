/**
 * The agent: certificate managers built from a configuration, kept running, reconfigured in
 * place. A manager tries the same issuers for all its certificates, so certificates are grouped
 * by their issuer list, one manager per group, all sharing one store. The agent re-emits every
 * manager's events and answers `status()` for all of them, so the health handler, the status page
 * and the log see one fleet.
 *
 * A reload builds everything the new configuration needs before it changes anything (a bad file
 * leaves the running agent as it was), then adds, removes and replaces certificates and targets:
 * an unchanged certificate keeps its manager and its served certificate; issuers whose settings
 * did not change keep their object (an ACME account, a CA's state); the store cannot change
 * without a restart.
 */
import { EventEmitter } from 'eventemitter3';
import type { DeployTarget } from '../deploy/target.js';
import { CertkeeperError, optionError } from '../errors.js';
import type { Issuer } from '../issuers/issuer.js';
import type { Logger } from '../logger.js';
import type { ManagerEventName, ManagerEvents } from '../manager/events.js';
import {
  type CertificateManager,
  type CertificateStatus,
  createCertificateManager,
} from '../manager/manager.js';
import { FileSourceIssuer } from '../sources/file-source-issuer.js';
import type { AgentConfig, CertificateConfig } from './config.js';
import { buildIssuer, type IssuerListener } from './issuers.js';
import type { AgentStore } from './store.js';
import { attachTargets, buildTargets } from './targets.js';

export const MANAGER_EVENTS: readonly ManagerEventName[] = [
  'loaded',
  'storedInvalid',
  'obtaining',
  'obtained',
  'renewed',
  'adopted',
  'renewalFailed',
  'expiring',
  'swapped',
  'rolledBack',
  'liveVerifyFailed',
  'revoked',
];

interface IssuerEntry {
  /** Its settings, to tell an unchanged issuer at a reload. */
  settings: string;
  issuer: Issuer;
  listeners: IssuerListener[];
  running: { close(): Promise<void> }[];
}

interface CertEntry {
  settings: string;
  targetSettings: string;
  targets: DeployTarget[];
  removeTargets: () => void;
}

interface Group {
  manager: CertificateManager;
  certs: Map<string, CertEntry>;
  /** Stops following the files of its certificates from a files issuer. */
  unfollow: (() => void)[];
}

/** Everything a configuration needs, built before anything changes. */
interface Plan {
  config: AgentConfig;
  issuers: Map<string, IssuerEntry>;
  groups: Map<
    string,
    { issuerIds: string[]; certs: Map<string, CertificateConfig & { built: DeployTarget[] }> }
  >;
}

export interface AgentOptions {
  store: AgentStore;
  logger: Logger;
  /** Whether managers keep the process alive (the daemon) or not (`--once`). */
  keepAlive: boolean;
}

const certSettings = (c: CertificateConfig) =>
  JSON.stringify({ names: c.names, keyType: c.keyType ?? null, purpose: c.purpose });

export class Agent extends EventEmitter<ManagerEvents> {
  readonly #o: AgentOptions;
  #plan: Plan | undefined;
  readonly #groups = new Map<string, Group>();
  #phase: 'new' | 'running' | 'stopped' = 'new';

  constructor(config: AgentConfig, options: AgentOptions) {
    super();
    this.#o = options;
    this.#plan = this.#build(config, new Map());
  }

  get config(): AgentConfig {
    return this.#plan!.config;
  }

  /** Builds issuers (reusing unchanged ones from `previous`), groups and targets of `config`. */
  #build(config: AgentConfig, previous: Map<string, IssuerEntry>): Plan {
    const issuers = new Map<string, IssuerEntry>();
    config.issuers.forEach((c, i) => {
      const settings = JSON.stringify(c);
      const old = previous.get(c.id);
      if (old && old.settings === settings) issuers.set(c.id, old);
      else issuers.set(c.id, { settings, ...buildIssuer(config, i), running: [] });
    });
    const groups: Plan['groups'] = new Map();
    config.certificates.forEach((c, i) => {
      const key = JSON.stringify(c.issuers.map((id) => issuers.get(id)!.settings));
      let group = groups.get(key);
      if (!group) {
        group = { issuerIds: c.issuers, certs: new Map() };
        groups.set(key, group);
      }
      const built = buildTargets(c.id, c.targets, `certificates[${i}].targets`, config.file);
      group.certs.set(c.id, { ...c, built });
    });
    return { config, issuers, groups };
  }

  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new CertkeeperError('MANAGER_STOPPED', 'the agent was started before');
    this.#phase = 'running';
    await this.#apply(this.#plan!, new Map());
  }

  /**
   * Switches to `config`. Everything it needs is built first: a configuration that cannot be
   * built throws and the running one is kept. Resolves with what changed.
   */
  async reload(config: AgentConfig): Promise<{ added: string[]; removed: string[]; replaced: string[] }> {
    if (this.#phase !== 'running') throw new CertkeeperError('MANAGER_STOPPED', 'the agent is not running');
    const current = this.#plan!;
    if (JSON.stringify(config.store) !== JSON.stringify(current.config.store))
      throw optionError(
        'store',
        'changed; the store is only read at start-up: restart the agent to change it',
        config.file,
        { file: config.file },
      );
    const next = this.#build(config, current.issuers);
    this.#plan = next;
    return this.#apply(next, current.issuers);
  }

  async #apply(plan: Plan, oldIssuers: Map<string, IssuerEntry>) {
    const { store, logger } = this.#o;
    const added: string[] = [];
    const removed: string[] = [];
    const replaced: string[] = [];
    // New issuers' listeners first: their certificates may be obtained at once.
    for (const entry of plan.issuers.values()) {
      if (entry.running.length === 0 && entry.listeners.length > 0) {
        for (const listener of entry.listeners) entry.running.push(await listener.start(store.store));
      }
    }
    for (const [key, wanted] of plan.groups) {
      let group = this.#groups.get(key);
      const fresh = !group;
      if (!group) {
        const certs = [...wanted.certs.values()];
        const manager = createCertificateManager({
          store: store.store,
          issuer: wanted.issuerIds.map((id) => plan.issuers.get(id)!.issuer),
          certificates: certs.map(({ id, names, keyType, purpose }) => ({
            id,
            names,
            purpose,
            ...(keyType && { keyType }),
          })),
          logger,
          keepAlive: this.#o.keepAlive,
          ...(plan.config.reconcileIntervalMs !== undefined && {
            reconcileIntervalMs: plan.config.reconcileIntervalMs,
          }),
        });
        for (const name of MANAGER_EVENTS)
          manager.on(name, (...args: unknown[]) =>
            (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args),
          );
        group = { manager, certs: new Map(), unfollow: [] };
        this.#groups.set(key, group);
        for (const c of certs) {
          group.certs.set(c.id, this.#entry(manager, c));
          added.push(c.id);
        }
      } else {
        for (const [id, entry] of group.certs) {
          const c = wanted.certs.get(id);
          if (c && certSettings(c) === entry.settings) {
            if (JSON.stringify(c.targets) !== entry.targetSettings) {
              entry.removeTargets();
              group.certs.set(id, this.#entry(group.manager, c));
              replaced.push(id);
            }
            continue;
          }
          entry.removeTargets();
          group.manager.unmanage(id);
          group.certs.delete(id);
          (c ? replaced : removed).push(id);
        }
        for (const c of wanted.certs.values()) {
          if (group.certs.has(c.id)) continue;
          group.manager.manage({
            id: c.id,
            names: c.names,
            purpose: c.purpose,
            ...(c.keyType && { keyType: c.keyType }),
          });
          group.certs.set(c.id, this.#entry(group.manager, c));
          if (!replaced.includes(c.id)) added.push(c.id);
        }
      }
      if (fresh) await group.manager.start();
      await this.#follow(plan, wanted.issuerIds, group);
    }
    // Groups no longer configured: their certificates went elsewhere or away.
    for (const [key, group] of this.#groups) {
      if (plan.groups.has(key)) continue;
      for (const [id, entry] of group.certs) {
        entry.removeTargets();
        const movedTo = [...plan.groups.values()].some((g) => g.certs.has(id));
        if (movedTo) {
          if (!replaced.includes(id)) replaced.push(id);
          const i = added.indexOf(id);
          if (i >= 0) added.splice(i, 1);
        } else removed.push(id);
      }
      for (const stop of group.unfollow) stop();
      this.#groups.delete(key);
      await group.manager.stop();
    }
    // Left one manager for another: replaced, not added and removed.
    for (const id of added.filter((x) => removed.includes(x))) {
      added.splice(added.indexOf(id), 1);
      removed.splice(removed.indexOf(id), 1);
      if (!replaced.includes(id)) replaced.push(id);
    }
    // Issuers no longer configured, or replaced by new settings.
    for (const [id, entry] of oldIssuers) {
      if (plan.issuers.get(id) === entry) continue;
      await Promise.allSettled(entry.running.map((r) => r.close()));
      await entry.issuer.close?.();
    }
    return { added, removed, replaced };
  }

  #entry(manager: CertificateManager, c: CertificateConfig & { built: DeployTarget[] }): CertEntry {
    return {
      settings: certSettings(c),
      targetSettings: JSON.stringify(c.targets),
      targets: c.built,
      removeTargets: attachTargets(manager, c.built),
    };
  }

  /** Follows the files of the group's certificates whose first issuer is a files issuer. */
  async #follow(plan: Plan, issuerIds: string[], group: Group): Promise<void> {
    for (const stop of group.unfollow.splice(0)) stop();
    if (!this.#o.keepAlive) return;
    const source = plan.issuers.get(issuerIds[0]!)!.issuer;
    if (!(source instanceof FileSourceIssuer)) return;
    group.unfollow.push(
      await source.follow(group.manager, [...group.certs.keys()], { logger: this.#o.logger }),
    );
  }

  /** Every managed certificate's status, across managers. */
  status(): CertificateStatus[] {
    return [...this.#groups.values()].flatMap((g) => g.manager.status());
  }

  /** The manager of certificate `id`. */
  managerOf(id: string): CertificateManager {
    for (const group of this.#groups.values()) if (group.certs.has(id)) return group.manager;
    throw new CertkeeperError('UNKNOWN_CERTIFICATE', `no certificate "${id}" in ${this.config.file}`);
  }

  /** Stops every manager, then closes what the agent opened (listeners, issuers, the store). */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopped';
    for (const group of this.#groups.values()) {
      for (const stop of group.unfollow) stop();
      for (const entry of group.certs.values()) entry.removeTargets();
    }
    await Promise.allSettled([...this.#groups.values()].map((g) => g.manager.stop()));
    for (const entry of this.#plan?.issuers.values() ?? []) {
      await Promise.allSettled(entry.running.map((r) => r.close()));
      await entry.issuer.close?.()?.catch(() => {});
    }
    await this.#o.store.store.close().catch(() => {});
  }
}
