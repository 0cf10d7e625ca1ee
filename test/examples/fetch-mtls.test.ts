// examples/fetch-mtls.mjs: calls keep succeeding while both certificates rotate, every answer names
// a client certificate the manager issued for the caller (three at least), and a client without a
// certificate is refused by the server.
import { afterEach, beforeAll, expect, it } from 'vitest';
import { cleanup, exportRoot, httpsGet, requireBuild, startExample, tempDir } from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

it('fetch-mtls.mjs: fetch presents the current client certificate through rotations, no call fails', {
  timeout: 120_000,
}, async () => {
  const store = tempDir('fetch');
  const example = startExample('fetch-mtls.mjs', {
    CERTKEEPER_DIR: store,
    LIFETIME_MS: '4000',
    INTERVAL_MS: '200',
  });
  const port = Number((await example.waitFor(/server listening on https:\/\/localhost:(\d+)\//))[1]);
  // Three client certificates: the first and two rotations, each seen by the server afterwards.
  await example.waitFor(
    /rotated caller: serial [0-9a-f]+\n[\s\S]*rotated caller: serial ([0-9a-f]+)\n[\s\S]*call \d+: 200 hello caller\.svc\.internal, serial \1\n/,
    90_000,
  );

  const root = await exportRoot(store);
  await expect(httpsGet(port, '/', { ca: root })).rejects.toThrow(); // no client certificate

  const { code } = await example.stop();
  expect(code).toBe(0);
  const out = example.output();
  const issued = new Set([...out.matchAll(/rotated caller: serial ([0-9a-f]+)/g)].map((m) => m[1]));
  const seen = new Set(
    [...out.matchAll(/call \d+: 200 hello caller\.svc\.internal, serial ([0-9a-f]+)/g)].map((m) => m[1]),
  );
  const first = /call 1: 200 hello caller\.svc\.internal, serial ([0-9a-f]+)/.exec(out)![1];
  expect([...seen].filter((s) => s !== first && !issued.has(s))).toEqual([]);
  expect(seen.size).toBeGreaterThanOrEqual(3);
  expect(out).not.toMatch(/failed:/);
  expect(out).toMatch(/\d+ calls, 0 failed/);
});
