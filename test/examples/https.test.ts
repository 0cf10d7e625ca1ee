// examples/https.mjs, the getting-started path: zero configuration in an empty directory, the
// root exported with the CLI and trusted by curl, and a restart that keeps the certificate.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { cleanup, cli, hexSerial, requireBuild, startExample, tempDir } from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

const LISTENING = /listening on https:\/\/localhost:(\d+)\/ \(certificate serial ([0-9a-f]+)\)/;

function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) =>
    execFile('curl', ['-sS', '--max-time', '30', ...args], (error, stdout) =>
      done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout }),
    ),
  );
}

it('https.mjs serves HTTPS from the embedded CA, trusted through export-root, and keeps its certificate across a restart', {
  timeout: 120_000,
}, async () => {
  const dir = tempDir('https');
  // No CERTKEEPER_DIR: the default store is ./.certkeeper of the working directory.
  const env = { PORT: '0', CERTKEEPER_DIR: undefined };
  const first = startExample('https.mjs', env, dir);
  const [, port, serial] = await first.waitFor(LISTENING);
  expect(first.output()).toMatch(new RegExp(`issued localhost: serial ${serial}`));
  expect(existsSync(join(dir, '.certkeeper'))).toBe(true);

  // Not trusted before its root is.
  const untrusted = await curl(['--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`]);
  expect(untrusted.code).toBe(60);
  await cli(['export-root', '-o', 'root.pem'], { cwd: dir });
  const trusted = await curl([
    '--cacert',
    join(dir, 'root.pem'),
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    `https://localhost:${port}/`,
  ]);
  expect(trusted).toEqual({ code: 0, stdout: 'hello over TLSv1.3\n' });
  expect(await first.stop()).toEqual({ code: 0, signal: null });

  const second = startExample('https.mjs', env, dir);
  const [, , again] = await second.waitFor(LISTENING);
  expect(hexSerial(again!)).toBe(hexSerial(serial!));
  expect(second.output()).not.toMatch(/issued/);
  expect(await second.stop()).toEqual({ code: 0, signal: null });
});
