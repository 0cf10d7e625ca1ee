// Adds lockfile entries for optional platform packages that npm did not record.
//
// Why: the registry this project is developed against serves only the linux-x64 builds of
// packages such as @esbuild/*, @rollup/* and @biomejs/cli-*. npm then writes no lockfile entry
// for the other platforms, and `npm ci` refuses the lockfile as "out of sync" (the npm/cli#8320
// family of bugs). An entry marked optional is enough for `npm ci`: on each platform npm installs
// the build it can fetch and skips the rest. Run after every dependency change:
//   npm install && node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
let added = 0;
for (const meta of Object.values(lock.packages)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    lock.packages[key] = { version, ...(meta.dev ? { dev: true } : {}), optional: true };
    added++;
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} optional platform entries`);
