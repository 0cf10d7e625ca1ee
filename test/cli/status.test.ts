// certkeeper status and inspect on what a store can really hold: expired certificates (exit 3),
// a damaged pointer, a pointer in an earlier version's first-name directory, a PEM file; and the
// failures an operator meets: no store there, an unknown id, a store without the CA (never
// created by the CLI), a URL with a password (never printed), wrong usage (exit 2).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { layout } from '../../src/store/layout.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { closedPort } from '../support/services.js';
import { cli, type Fixture, fill, storeOf } from './support.js';

const HOUR = 3_600_000;
const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.cleanup();
});

async function fileStore() {
  const f = (await storeOf('file'))!;
  fixtures.push(f);
  return f;
}

describe('certkeeper status', () => {
  it('exits 3 when a certificate has expired, and says which', async () => {
    const f = await fileStore();
    // Issued three days ago for a day (the manager's clock): expired now.
    await fill(f.store, [{ id: 'old', names: ['old.test'] }], new FakeClock(Date.now() - 72 * HOUR));
    await fill(f.store, [{ id: 'new', names: ['new.test'] }]);
    const run = await cli(['status', ...f.args]);
    expect(run.code).toBe(3);
    const old = run.stdout.split('\n').find((l) => l.startsWith('old '))!;
    expect(old).toMatch(/\(2d ago\)\s+due now\s+expired\s+-$/);
    expect(run.stdout.split('\n').find((l) => l.startsWith('new '))).toMatch(/\svalid\s+-$/);
    const json = await cli(['status', '--json', ...f.args]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout).map((c: { state: string }) => c.state)).toEqual(['valid', 'expired']);
  });

  it('reports a damaged pointer as the last error (STORE_CORRUPT) and lists the rest', async () => {
    const f = await fileStore();
    const { status } = await fill(f.store);
    await f.store.put(
      layout.certificate(status[0]!.issuer!, 'broken').current,
      '{"version":1,"id":"broken",',
    );
    const run = await cli(['status', '--json', ...f.args]);
    expect(run.code).toBe(3);
    const listed = JSON.parse(run.stdout);
    expect(listed.map((c: { id: string }) => c.id)).toEqual(['api', 'broken', 'web']);
    expect(listed[1]).toMatchObject({
      state: 'damaged',
      serial: null,
      lastError: { code: 'STORE_CORRUPT', message: 'pointer is not valid JSON' },
    });
    const table = await cli(['status', ...f.args]);
    expect(table.stdout).toMatch(/^broken .*damaged\s+STORE_CORRUPT: pointer is not valid JSON$/m);
  });

  it("finds pointers in an earlier version's first-name directories, once per certificate", async () => {
    const f = await fileStore();
    const { status } = await fill(f.store);
    const issuer = status[0]!.issuer!;
    const web = layout.certificate(issuer, 'web').current;
    const pointer = (await f.store.get(web))!;
    // The same certificate left behind in its first-name directory: listed once, from @web.
    await f.store.put(layout.legacyCertificate(issuer, 'web.test').current, pointer);
    // A certificate only an earlier version wrote.
    const legacy = JSON.parse(Buffer.from(pointer).toString());
    await f.store.put(
      layout.legacyCertificate(issuer, 'old.test').current,
      JSON.stringify({ ...legacy, id: 'old.test', names: ['old.test'] }),
    );
    const listed = JSON.parse((await cli(['status', '--json', ...f.args])).stdout);
    expect(listed.map((c: { id: string; key: string }) => [c.id, c.key])).toEqual([
      ['api', layout.certificate(issuer, 'api').current],
      ['old.test', layout.legacyCertificate(issuer, 'old.test').current],
      ['web', web],
    ]);
  });

  it('says so when the store is empty, or not there at all', async () => {
    const f = await fileStore();
    const empty = await cli(['status', ...f.args]);
    // The FileStore directory is created on first write: nothing written, nothing there.
    expect(empty).toMatchObject({ code: 1, stdout: '' });
    expect(empty.stderr).toMatch(/no store directory at .*store \(STORE_IO\)/);
    await f.store.put('some/key', 'x');
    expect(await cli(['status', ...f.args])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: expect.stringMatching(/^no certificates in /),
    });
    expect(await cli(['status', '--json', ...f.args])).toMatchObject({ code: 0, stdout: '[]\n' });
  });

  it('reads $CERTKEEPER_STORE and $CERTKEEPER_DIR', async () => {
    const f = await fileStore();
    await fill(f.store);
    const directory = f.args[1]!.replace(/^file:/, '');
    expect((await cli(['status', '--json'], { CERTKEEPER_STORE: `file:${directory}` })).code).toBe(0);
    const run = await cli(['status', '--json'], { CERTKEEPER_DIR: directory });
    expect(JSON.parse(run.stdout)).toHaveLength(2);
  });

  it('never prints the password of a store URL, and fails with exit 1 when the store is unreachable', async () => {
    const port = await closedPort();
    const run = await cli(['status', '--store', `postgres://admin:s3cret-pw@127.0.0.1:${port}/db`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\(STORE_IO\)/);
    expect(run.stderr).not.toContain('s3cret-pw');
  });

  it('usage errors exit 2', async () => {
    expect(await cli(['status', '--bogus'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/Unknown option '--bogus'/),
    });
    expect(await cli(['status', 'extra'])).toMatchObject({ code: 2 });
    expect(await cli(['inspect'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/give one certificate id or file/),
    });
    expect(await cli(['nope'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown command "nope"/),
    });
    expect(await cli([])).toMatchObject({ code: 2 });
    expect(await cli(['status', '--store', 'ftp://x'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/unknown scheme/),
    });
  });
});

describe('certkeeper inspect', () => {
  it('a PEM file: every certificate in it', async () => {
    const f = await fileStore();
    const { roots } = await fill(f.store);
    const file = join(f.dir, 'root.pem');
    writeFileSync(file, roots[0]!);
    const run = await cli(['inspect', 'root.pem'], {}, f.dir);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Certificate 1 of 1 \(CA\)\n {2}Subject: {8}CN=certkeeper-internal Root/);
    expect(run.stdout).toMatch(/Key usage: {6}.*keyCertSign/);
    const json = JSON.parse((await cli(['inspect', file, '--json'])).stdout);
    expect(json.certificates[0]).toMatchObject({ isCA: true, keyType: 'ec-p256' });
  });

  it('an unknown id exits 1 and names the store', async () => {
    const f = await fileStore();
    await fill(f.store);
    const run = await cli(['inspect', 'nobody', ...f.args]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /no file nobody and no certificate with id "nobody" in .* \(UNKNOWN_CERTIFICATE\)/,
    );
  });

  it('a pointer whose chain is gone exits 1 with the problem', async () => {
    const f = await fileStore();
    const { status } = await fill(f.store);
    const web = status.find((s) => s.id === 'web')!;
    await f.store.delete(layout.certificate(web.issuer!, 'web').generation(web.serial!).cert);
    const run = await cli(['inspect', 'web', ...f.args]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`Problem:        STORE_CORRUPT: no chain stored for serial ${web.serial}`);
  });
});

describe('certkeeper export-root', () => {
  it('writes the root to a file; a store without the CA is an error and gets no CA', async () => {
    const f = await fileStore();
    const { roots } = await fill(f.store);
    const out = join(f.dir, 'ca.pem');
    const run = await cli(['export-root', ...f.args, '-o', out]);
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(readFileSync(out, 'utf8')).toBe(roots[0]);
    const other = await cli(['export-root', ...f.args, '--ca-name', 'other-ca']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/no embedded CA named other-ca .*\(CA_ROOT_MISSING\)/);
    expect(readdirSync(join(f.args[1]!.replace(/^file:/, ''), 'ca'))).toEqual(['certkeeper-internal']);
  });
});
