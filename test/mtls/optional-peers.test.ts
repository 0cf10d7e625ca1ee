// undici and @grpc/grpc-js are optional peers: the built package must load without them, and
// the features that need them must say which package to install. Run against dist/ (as
// test/package.test.ts) in a child process where resolving either package fails.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const HIDDEN = ['undici', '@grpc/grpc-js'];

// ESM: a resolve hook that refuses the hidden packages.
const esmHook = `data:text/javascript,${encodeURIComponent(`
  import { register } from 'node:module';
  register('data:text/javascript,' + encodeURIComponent(
    'const hidden = ${JSON.stringify(HIDDEN)};' +
    'export async function resolve(specifier, context, next) {' +
    '  if (hidden.includes(specifier)) { const e = new Error("Cannot find package " + specifier); e.code = "ERR_MODULE_NOT_FOUND"; throw e; }' +
    '  return next(specifier, context);' +
    '}'));
`)}`;

// CJS: Node 20's loader hooks do not cover require(), so patch the CommonJS resolver too (the
// CJS build loads the peers with a dynamic import(), which the ESM hook covers).
const cjsPatch = `
  const Module = require('node:module');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    if (${JSON.stringify(HIDDEN)}.includes(request)) { const e = new Error('Cannot find module ' + request); e.code = 'MODULE_NOT_FOUND'; throw e; }
    return resolve.call(this, request, ...rest);
  };
`;

/** Runs in the child with `ck`, `undici` and `grpc` bound to the package's entries (root, certkeeper/undici, certkeeper/grpc). */
const probe = `
  const results = {};
  results.loaded = typeof ck.createCertificateManager === 'function' && typeof ck.createRotatingAgent === 'function';
  const manager = ck.createCertificateManager({ certificates: [{ id: 'c', names: ['c.test'], purpose: 'client' }], logger: ck.silentLogger, reconcileIntervalMs: 0 });
  for (const [name, run] of [
    ['dispatcher', () => undici.createRotatingDispatcher(manager, 'c')],
    ['grpc', () => grpc.grpcChannelCredentials(manager, { trust: [] })],
  ]) {
    try { await run(); results[name] = 'resolved'; }
    catch (e) { results[name] = { code: e.code, dependency: e.details?.dependency }; }
  }
  console.log(JSON.stringify(results));
`;

const node = (args: string[]) =>
  JSON.parse(execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!);

const expected = {
  loaded: true,
  dispatcher: { code: 'NOT_SUPPORTED', dependency: 'undici' },
  grpc: { code: 'NOT_SUPPORTED', dependency: '@grpc/grpc-js' },
};

describe('optional peers absent', () => {
  it('import: certkeeper loads; the dispatcher and gRPC helpers name the missing package', () => {
    const out = node([
      '--import',
      esmHook,
      '--input-type=module',
      '-e',
      `import * as ck from 'certkeeper'; import * as undici from 'certkeeper/undici'; import * as grpc from 'certkeeper/grpc'; ${probe}`,
    ]);
    expect(out).toEqual(expected);
  });

  it('require: the same through the CommonJS build', () => {
    const out = node([
      '--import',
      esmHook,
      '-e',
      `${cjsPatch} (async () => { const ck = require('certkeeper'); const undici = require('certkeeper/undici'); const grpc = require('certkeeper/grpc'); ${probe} })();`,
    ]);
    expect(out).toEqual(expected);
  });
});
