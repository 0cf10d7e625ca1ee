// Debian tools some tests drive for real: prometheus and promtool (package prometheus), chromium,
// certutil (libnss3-tools), update-ca-certificates (ca-certificates). .ci/run installs them.
// When one is missing its tests skip loudly, except under CI=true, where they fail: a skip there
// would hide a feature that was never tested.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const WHERE = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];

/** The absolute path of `name` on PATH (or the usual sbin directories), or null. */
export function findTool(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...WHERE]) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return null;
}

/**
 * The paths of `tools`, or null after a loud warning when one is missing (an error under
 * CI=true). `pkg` names the Debian package that provides them.
 */
export function requireTools<T extends string>(
  tools: readonly T[],
  pkg: string,
  what: string,
): Record<T, string> | null {
  const found = Object.fromEntries(tools.map((t) => [t, findTool(t)])) as Record<T, string | null>;
  const missing = tools.filter((t) => found[t] === null);
  if (missing.length === 0) return found as Record<T, string>;
  const message = `${missing.join(', ')} not installed (Debian package ${pkg}): ${what} are NOT being run`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n!!! ${message}\n`);
  return null;
}
