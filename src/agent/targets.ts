/**
 * Deploy targets of the configuration's `targets:` entries (src/deploy's file-and-reload
 * targets), and their wiring into a manager through `manager.addTarget`: the one place the agent
 * touches the manager's target API.
 */
import * as deploy from '../deploy/index.js';
import type { DeployTarget } from '../deploy/target.js';
import type { CertificateManager } from '../manager/manager.js';
import { buildTarget, type TargetFactories, type TargetSpec } from './target-specs.js';

/**
 * The deploy factories: src/deploy's public names (`fileTarget` and the reload recipes). The
 * configuration's plain values reach them unchecked by type: each factory validates its options
 * and throws INVALID_OPTION, which buildTarget reports at the setting's path.
 */
export function targetFactories(): TargetFactories {
  return deploy as unknown as TargetFactories;
}

/** The deploy targets of certificate `id` from its `targets:` entries (`path` names them in the file). */
export function buildTargets(
  id: string,
  specs: readonly TargetSpec[],
  path: string,
  file: string,
  factories: TargetFactories = targetFactories(),
): DeployTarget[] {
  return specs.map((spec, i) => buildTarget(id, spec, factories, `${path}[${i}]`, file));
}

/** Adds `targets` to `manager`; returns a function that removes them again. */
export function attachTargets(manager: CertificateManager, targets: readonly DeployTarget[]): () => void {
  const removers = targets.map((t) => manager.addTarget(t));
  // The agent built these targets: once removed from the manager, it releases them.
  return () => {
    for (const remove of removers) remove();
    for (const target of targets) void target.close?.()?.catch(() => {});
  };
}
