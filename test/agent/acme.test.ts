// The agent's ACME issuer against Pebble: the configuration's directory, account e-mail, CA file
// and HTTP-01 challenge (the agent answers on the configured port) obtain a real certificate with
// `agent --once`; `certkeeper revoke` revokes it at the CA.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCertificates } from '../../src/cli/stored.js';
import { FileStore } from '../../src/store/file-store.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';
import { assertBuilt, certkeeper } from './support.js';

describePebble('certkeeper agent with an ACME issuer (Pebble)', () => {
  let pebble: Pebble;
  let dir: string;
  beforeAll(async () => {
    assertBuilt();
    pebble = await startPebble();
    await pebble.challtestsrv.addA('web.test', '127.0.0.1');
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-acme-'));
    writeFileSync(join(dir, 'pebble-ca.pem'), pebble.caPem);
    writeFileSync(
      join(dir, 'certkeeper.yaml'),
      `store: file:./store
issuers:
  - id: pebble
    type: acme
    directory: ${pebble.directoryUrl}
    email: ops@example.test
    agreeToTerms: true
    caFile: pebble-ca.pem
    challenges: [{ type: http-01, port: ${pebble.httpPort}, host: 127.0.0.1 }]
certificates: [{ id: web, names: [web.test], issuer: pebble }]
`,
    );
  }, 60_000);
  afterAll(async () => {
    await pebble?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--once obtains through HTTP-01; revoke revokes at the CA', async () => {
    const run = certkeeper(['agent', '--once', '--config', 'certkeeper.yaml', '--log-format', 'json'], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ renewed: ['web'], failed: [] });
    const [stored] = await readCertificates(new FileStore({ directory: join(dir, 'store') }));
    expect(stored).toMatchObject({ id: 'web', issuer: pebble.directoryUrl });
    expect((await pebble.certStatus(stored!.serial!))?.Status).toBe('Valid');

    const revoked = certkeeper(
      ['revoke', 'web', '--config', 'certkeeper.yaml', '--reason', 'superseded', '--json'],
      dir,
    );
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ revokedSerial: stored!.serial });
    expect((await pebble.certStatus(stored!.serial!))?.Status).toBe('Revoked');
  }, 180_000);
});
