/**
 * Deploy targets of the configuration's `targets:` entries, and their wiring into a manager:
 * the one place the agent touches the manager's target API (`ManagerOptions.targets`,
 * `manager.addTarget(target)` returning a remover). Written against that API's names only, so it
 * compiles before the manager has it; until then, and until the file-and-reload target factory
 * is part of the build, a configuration with targets is refused at load with NOT_SUPPORTED
 * rather than accepted and silently never deployed.
 */
import * as deploy from '../deploy/index.js';
import type { DeployTarget } from '../deploy/target.js';
import { CertkeeperError } from '../errors.js';
import type { CertificateManager } from '../manager/manager.js';
import { buildTarget, type TargetFactories, type TargetSpec } from './target-specs.js';

/** What the agent needs of a manager for targets (part of its API once deploy targets land). */
interface TargetHost {
  addTarget?(target: DeployTarget): () => void;
}

/** Whether this build's manager takes deploy targets. */
export function managerTakesTargets(manager: CertificateManager): boolean {
  return typeof (manager as unknown as TargetHost).addTarget === 'function';
}

/**
 * The deploy factories of this build: src/deploy's public names (`fileTarget` and the reload
 * recipes), or null while the build has none. The one line to change when they are merged:
 * `return deploy` after `import * as deploy from '../deploy/index.js'`.
 */
export function targetFactories(): TargetFactories | null {
  // The configuration's plain values go to the factories unchecked by type: each factory
  // validates its options and throws INVALID_OPTION, which buildTarget reports at the setting.
  return deploy as unknown as TargetFactories;
}

/**
 * The deploy targets of certificate `id` from its `targets:` entries (`path` names them in the
 * file). Throws NOT_SUPPORTED while this build has no file-and-reload targets.
 */
export function buildTargets(
  id: string,
  specs: readonly TargetSpec[],
  path: string,
  file: string,
  factories: TargetFactories | null = targetFactories(),
): DeployTarget[] {
  if (specs.length === 0) return [];
  if (!factories)
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      `${file}: ${path} lists deploy targets for "${id}", which this build of certkeeper cannot deploy to yet (file-and-reload targets are not part of it)`,
      { details: { option: path, file } },
    );
  return specs.map((spec, i) => buildTarget(id, spec, factories, `${path}[${i}]`, file));
}

/** Adds `targets` to `manager`; returns a function that removes them again. */
export function attachTargets(manager: CertificateManager, targets: readonly DeployTarget[]): () => void {
  if (targets.length === 0) return () => {};
  const host = manager as unknown as TargetHost;
  if (typeof host.addTarget !== 'function')
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      'this build of the certificate manager takes no deploy targets',
    );
  const removers = targets.map((t) => host.addTarget!(t));
  // The agent built these targets: once removed from the manager, it releases them.
  return () => {
    for (const remove of removers) remove();
    for (const target of targets) void target.close?.()?.catch(() => {});
  };
}
