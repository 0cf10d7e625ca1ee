// examples/step-ca.mjs against the test suite's step-ca stand-in (test/support/step-ca/, which
// follows step-ca's rules over real HTTPS, since step-ca itself cannot run here): a token minted
// with the built `certkeeper token`, enrollment from the token file, the certificate served over
// HTTPS trusting the CA's root, and a restart without the token serving the same certificate.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { FakeStepCa } from '../support/step-ca/ca.js';
import { cleanup, cli, hexSerial, httpsGet, requireBuild, startExample, tempDir } from './support.js';

let ca: FakeStepCa;
beforeAll(async () => {
  requireBuild();
  ca = await FakeStepCa.start();
});
afterAll(() => ca?.stop());
afterEach(cleanup);

const LISTENING = /listening on https:\/\/localhost:(\d+)\/ \(certificate serial ([0-9a-f]+)\)/;

it('step-ca.mjs enrolls once with a one-time token and needs none after a restart', {
  timeout: 120_000,
}, async () => {
  const dir = tempDir('step-ca');
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const token = await cli([
    'token',
    '--ca-url',
    ca.url,
    '--root',
    file('root_ca.crt', ca.rootPem),
    '--provisioner',
    ca.provisioner.name,
    '--key',
    file('provisioner.jwe', ca.provisioner.encryptedKey),
    '--password-file',
    file('password.txt', `${ca.provisioner.password}\n`),
    'localhost',
  ]);
  const env = {
    STEP_CA_URL: ca.url,
    ROOT_FINGERPRINT: ca.rootFingerprint,
    TOKEN_FILE: file('enroll-token', token.trim()),
    NAMES: 'localhost',
    PORT: '0',
    CERTKEEPER_DIR: join(dir, 'store'),
  };
  const first = startExample('step-ca.mjs', env);
  const [, enrolled] = await first.waitFor(/enrolled: serial ([0-9a-f]+)/);
  const [, port, serial] = await first.waitFor(LISTENING);
  expect(serial).toBe(enrolled);
  const answer = await httpsGet(Number(port), '/', { ca: ca.rootPem });
  expect([answer.body, answer.serial]).toEqual(['hello from an enrolled service\n', hexSerial(serial!)]);
  expect(await first.stop()).toEqual({ code: 0, signal: null });
  expect(ca.issued).toHaveLength(1);

  rmSync(env.TOKEN_FILE); // spent: the next start must not need it
  const second = startExample('step-ca.mjs', env);
  const [, , again] = await second.waitFor(LISTENING);
  expect(again).toBe(serial);
  expect(second.output()).not.toMatch(/enrolled|attempt failed/);
  expect(await second.stop()).toEqual({ code: 0, signal: null });
  expect(ca.issued).toHaveLength(1);
});
