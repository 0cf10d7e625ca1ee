/**
 * Loading an optional peer (prom-client, @opentelemetry/api) on first use, so `certkeeper/metrics`
 * can be imported where neither is installed; a missing one is NOT_SUPPORTED naming the package.
 */
import { CertkeeperError, describeCause } from '../errors.js';

export async function loadOptional<T>(name: string, load: () => Promise<unknown>): Promise<T> {
  let loaded: unknown;
  try {
    loaded = await load();
  } catch (err) {
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      `certkeeper/metrics needs the optional peer dependency "${name}" for this: npm install ${name} (${describeCause(err)})`,
      { cause: err, details: { dependency: name } },
    );
  }
  // An ESM import of a CommonJS package puts its exports under `default`.
  const module = loaded as { default?: unknown };
  return (module.default && typeof module.default === 'object' ? module.default : loaded) as T;
}
