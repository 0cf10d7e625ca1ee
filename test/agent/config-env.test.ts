// The agent's configuration from the environment: overrides of any setting, and secrets read
// from files (Docker secrets), each checked like the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config-file.js';
import { CertkeeperError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'certkeeper.yaml');

const load = (text: string, env: Record<string, string> = {}) =>
  parseAgentConfig(text, file, { env, cwd: dir });

/** The INVALID_OPTION a configuration is refused with. */
function refusal(text: string, env: Record<string, string> = {}): CertkeeperError {
  try {
    load(text, env);
  } catch (error) {
    expect(error).toBeInstanceOf(CertkeeperError);
    expect((error as CertkeeperError).code).toBe('INVALID_OPTION');
    return error as CertkeeperError;
  }
  throw new Error('the configuration was accepted');
}

function refusedAt(text: string, option: string, message: RegExp, env: Record<string, string> = {}) {
  const error = refusal(text, env);
  expect(error.details.option).toBe(option);
  expect(error.message).toMatch(message);
  return error;
}

describe('the agent configuration from the environment', () => {
  it('secrets from files: <setting>File reads the file (relative to the configuration), never both forms', () => {
    writeFileSync(join(dir, 'enc.key'), 'ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleTEyMzQ=\n');
    writeFileSync(join(dir, 'hmac'), 'aG1hYw\n');
    const config = load(`store: { url: "redis://127.0.0.1:6379", encryptionKeyFile: enc.key }
issuers:
  - { id: le, type: acme, directory: "https://a/d", agreeToTerms: true, eab: { kid: k, hmacKeyFile: ${join(dir, 'hmac')} }, challenges: [{ type: http-01 }] }
certificates: [{ names: [a.test], issuer: le }]
`);
    expect(config.store.encryptionKey).toBe('ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleTEyMzQ=');
    expect((config.issuers[0] as { eab: unknown }).eab).toEqual({ kid: 'k', hmacKey: 'aG1hYw' });
    refusedAt(
      'store: { url: file:/s, encryptionKey: a, encryptionKeyFile: enc.key }\ncertificates: [{ names: [a.test] }]\n',
      'store.encryptionKeyFile',
      /both given/,
    );
    refusedAt(
      'store: { url: file:/s, encryptionKeyFile: missing.key }\ncertificates: [{ names: [a.test] }]\n',
      'store.encryptionKeyFile',
      /cannot be read: missing.key \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'empty'), '\n');
    refusedAt(
      'store: { url: file:/s, encryptionKeyFile: empty }\ncertificates: [{ names: [a.test] }]\n',
      'store.encryptionKeyFile',
      /empty file/,
    );
  });

  it('environment overrides: CERTKEEPER__<PATH>, list elements by id or index, YAML values, *_FILE', () => {
    writeFileSync(join(dir, 'url'), 'redis://127.0.0.1:6379/2\n');
    const text = `store: { url: file:/s, encryptionKey: fromfile }
issuers:
  - { id: le-prod, type: acme, directory: "https://a/d", agreeToTerms: true, challenges: [{ type: http-01 }] }
certificates: [{ id: web, names: [web.test], issuer: le-prod }]
`;
    const config = load(text, {
      CERTKEEPER__ISSUERS__LE_PROD__EMAIL: 'ops@example.test',
      CERTKEEPER__ISSUERS__0__CHALLENGES__0__PORT: '8080',
      CERTKEEPER__CERTIFICATES__WEB__NAMES: '[web.test, www.web.test]',
      CERTKEEPER__HEALTH__PORT: '9100',
      CERTKEEPER__STORE__URL_FILE: join(dir, 'url'),
      CERTKEEPER__STORE__ENCRYPTION_KEY: '1234',
    });
    expect(config.issuers[0]).toMatchObject({
      email: 'ops@example.test',
      challenges: [{ type: 'http-01', port: 8080 }],
    });
    expect(config.certificates[0]!.names).toEqual(['web.test', 'www.web.test']);
    expect(config.health).toEqual({ port: 9100, host: '0.0.0.0' });
    expect(config.store.url).toBe('redis://127.0.0.1:6379/2');
    // A secret stays text even when it looks like a number.
    expect(config.store.encryptionKey).toBe('1234');
    // The variables the other commands read.
    expect(load(text, { CERTKEEPER_STORE: 'file:/other', CERTKEEPER_ENCRYPTION_KEY: 'k2' }).store).toEqual({
      url: 'file:/other',
      encryptionKey: 'k2',
    });
    // An override of one form of a secret replaces the other form from the file.
    writeFileSync(join(dir, 'enc2'), 'fromsecret\n');
    expect(
      load(text, { CERTKEEPER__STORE__ENCRYPTION_KEY_FILE: join(dir, 'enc2') }).store.encryptionKey,
    ).toBe('fromsecret');
    const error = refusal(text, { CERTKEEPER__CERTIFICATES__NOPE__NAMES: '[x.test]' });
    expect(error.details.option).toBe('CERTKEEPER__CERTIFICATES__NOPE__NAMES');
    expect(error.message).toMatch(
      /^environment option CERTKEEPER__CERTIFICATES__NOPE__NAMES names no element "NOPE"/,
    );
    refusedAt(text, 'store.bogus', /is not a known setting/, { CERTKEEPER__STORE__BOGUS: 'x' });
    // What an override sets is validated like the file.
    refusedAt(text, 'health.port', /integer in 0..65535/, { CERTKEEPER__HEALTH__PORT: 'x' });
  });
});
