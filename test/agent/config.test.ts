// The agent's configuration file: YAML or JSON, each rule of the schema refused with an
// INVALID_OPTION error naming the file and the setting's path (the environment: config-env.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config-file.js';
import { buildIssuers } from '../../src/agent/issuers.js';
import { CertkeeperError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-config-'));
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

const BASE = `store: file:./store
certificates:
  - names: [web.test]
`;

describe('the agent configuration', () => {
  it('a minimal file: the store, one certificate; the embedded CA, purpose server and the id by default', () => {
    const config = load(BASE);
    expect(config.store).toEqual({ url: 'file:./store' });
    expect(load(BASE, { CERTKEEPER__STORE__REDIS_PREFIX: 'p' }).store).toEqual({
      url: 'file:./store',
      redisPrefix: 'p',
    });
    expect(config.issuers).toEqual([{ type: 'internal', id: 'internal' }]);
    expect(config.certificates).toEqual([
      { id: 'web.test', names: ['web.test'], issuers: ['internal'], purpose: 'server', targets: [] },
    ]);
    expect(config.health).toBeUndefined();
  });

  it('JSON is read the same way', () => {
    const config = load(
      JSON.stringify({
        store: { url: 'file:/s' },
        certificates: [{ id: 'api', names: ['api.test'], purpose: 'client' }],
      }),
    );
    expect(config.certificates[0]).toMatchObject({ id: 'api', purpose: 'client' });
  });

  it('every issuer kind, durations and health', () => {
    const config = load(`store: file:/s
health: { port: 9000 }
issuers:
  - { id: ca, type: internal, name: my-ca, lifetime: 48h, keyType: ec-p384 }
  - id: le
    type: acme
    directory: https://acme.test/dir
    email: ops@example.test
    agreeToTerms: true
    eab: { kid: k1, hmacKey: c2VjcmV0 }
    challenges:
      - { type: http-01, port: 8080 }
      - { type: dns-01, challtestsrv: "http://127.0.0.1:8055", propagationTimeout: 30s }
  - { id: step, type: step-ca, url: "https://ca.test:9000", rootFingerprint: "ab", tokenFile: /run/secrets/t, lifetime: 90m }
  - { id: certbot, type: files, chain: "/etc/letsencrypt/live/{id}/fullchain.pem", key: "/etc/letsencrypt/live/{id}/privkey.pem" }
certificates:
  - id: web
    names: [web.test]
    issuer: [le, ca]
    keyType: rsa-2048
    targets:
      - dir: certs/web
        files: { combined: web.pem }
        mode: { key: 0o640 }
        reload: [{ nginx: { config: /etc/nginx/nginx.conf } }, { signal: { pidfile: /run/x.pid, signal: SIGHUP } }]
        verify: [{ host: 127.0.0.1, port: 443, servername: web.test }]
`);
    expect(config.health).toEqual({ port: 9000, host: '0.0.0.0' });
    expect(load(`${BASE}reconcileInterval: 5s\n`).reconcileIntervalMs).toBe(5000);
    expect(load(`${BASE}reconcileInterval: 0\n`).reconcileIntervalMs).toBe(0);
    refusedAt(`${BASE}reconcileInterval: 10ms\n`, 'reconcileInterval', /at least 1000 ms/);
    expect(config.issuers[0]).toEqual({
      type: 'internal',
      id: 'ca',
      name: 'my-ca',
      lifetimeMs: 48 * 3_600_000,
      keyType: 'ec-p384',
    });
    expect(config.issuers[1]).toMatchObject({
      type: 'acme',
      eab: { kid: 'k1', hmacKey: 'c2VjcmV0' },
      challenges: [
        { type: 'http-01', port: 8080 },
        { type: 'dns-01', challtestsrv: 'http://127.0.0.1:8055', propagationTimeoutMs: 30_000 },
      ],
    });
    expect(config.issuers[2]).toMatchObject({
      type: 'step-ca',
      lifetimeMs: 90 * 60_000,
      tokenFile: '/run/secrets/t',
    });
    expect(config.certificates[0]).toMatchObject({
      issuers: ['le', 'ca'],
      keyType: 'rsa-2048',
    });
    expect(config.certificates[0]!.targets).toEqual([
      {
        dir: join(dir, 'certs/web'),
        files: { combined: 'web.pem' },
        mode: { key: 0o640 },
        reload: [
          { kind: 'nginx', options: { config: '/etc/nginx/nginx.conf' } },
          { kind: 'signal', options: { pidfile: '/run/x.pid', signal: 'SIGHUP' } },
        ],
        verify: [{ host: '127.0.0.1', port: 443, servername: 'web.test' }],
      },
    ]);
  });

  it('names the file and the path of what it refuses', () => {
    const error = refusedAt(BASE.replace('names', 'nmes'), 'certificates[0].nmes', /is not a known setting/);
    expect(error.message).toContain(file);
    expect(error.details.file).toBe(file);
    refusedAt(`${BASE}stroe: x\n`, 'stroe', /is not a known setting/);
    refusedAt('certificates: []\n', 'store', /is required/);
    refusedAt('store: file:/s\n', 'certificates', /is required/);
    refusedAt('store: file:/s\ncertificates: []\n', 'certificates', /at least one/);
  });

  it('certificates: names, ids, issuers, purpose, key type, targets', () => {
    refusedAt(
      `store: file:/s
certificates:
  - names: [ok.test]
  - names: ["bad name!"]
`,
      'certificates[1].names[0]',
      /not a DNS name/,
    );
    refusedAt(
      `store: file:/s
certificates:
  - { id: a, names: [a.test] }
  - { id: a, names: [b.test] }
`,
      'certificates[1].id',
      /duplicates id "a"/,
    );
    refusedAt(
      `${BASE}    issuer: nope\n`,
      'certificates[0].issuer',
      /names no issuer of issuers \(known: internal\)/,
    );
    refusedAt(`${BASE}    issuer: [internal, nope]\n`, 'certificates[0].issuer[1]', /names no issuer/);
    refusedAt(`${BASE}    purpose: peer\n`, 'certificates[0].purpose', /one of server, client/);
    refusedAt(`${BASE}    keyType: dsa\n`, 'certificates[0].keyType', /one of ec-p256/);
    refusedAt(`${BASE}    targets: [nginx]\n`, 'certificates[0].targets[0]', /must be a mapping/);
    refusedAt(`${BASE}    targets: [{ reload: [] }]\n`, 'certificates[0].targets[0].dir', /non-empty string/);
    refusedAt(
      `${BASE}    targets: [{ dir: /c, reload: [{ nginx: {}, apache: {} }] }]\n`,
      'certificates[0].targets[0].reload[0]',
      /one recipe with its options \(nginx, apache, haproxy/,
    );
    refusedAt(
      `${BASE}    targets: [{ dir: /c, reload: [{ systemctl: {} }] }]\n`,
      'certificates[0].targets[0].reload[0]',
      /one recipe/,
    );
    refusedAt(
      `${BASE}    targets: [{ dir: /c, verify: [443] }]\n`,
      'certificates[0].targets[0].verify[0]',
      /must be a mapping/,
    );
    refusedAt(
      `${BASE}    targets: [{ dir: /c, keep: 0 }]\n`,
      'certificates[0].targets[0].keep',
      /integer in 1..100/,
    );
    refusedAt(`${BASE}    id: "a/../b"\n`, 'certificates[0].id', /must be 1-128 of/);
    expect(load('store: file:/s\ncertificates: [{ names: ["*.Web.test"] }]\n').certificates[0]!.id).toBe(
      'wildcard.web.test',
    );
  });

  it('the store: known schemes; a shared store needs encryption keys or says none', () => {
    refusedAt(BASE.replace('file:./store', 'mysql://db/x'), 'store.url', /unknown scheme/);
    refusedAt(
      BASE.replace('file:./store', 'redis://127.0.0.1:6379'),
      'store.encryptionKey',
      /required for a shared store/,
    );
    expect(
      load(BASE.replace('file:./store', '{ url: "redis://h:6379", encryption: none }')).store.encryption,
    ).toBe('none');
    refusedAt(
      BASE.replace('file:./store', '{ url: "postgres://h/db", encryption: none, encryptionKey: k }'),
      'store.encryption',
      /give one/,
    );
    refusedAt(
      BASE.replace('file:./store', '{ url: "postgres://h/db", encryption: none, pgTable: "x;drop" }'),
      'store.pgTable',
      /SQL name/,
    );
  });

  it("issuers: ids, types and each kind's required settings", () => {
    const certs = 'certificates: [{ names: [a.test] }]\nstore: file:/s\n';
    refusedAt(
      `issuers: [{ id: x, type: vault }]\n${certs}`,
      'issuers[0].type',
      /one of internal, acme, step-ca, files/,
    );
    refusedAt(
      `issuers: [{ id: x, type: internal }, { id: x, type: internal }]\n${certs}`,
      'issuers[1].id',
      /duplicates/,
    );
    refusedAt(`issuers: [{ id: "-x", type: internal }]\n${certs}`, 'issuers[0].id', /1-64 of/);
    refusedAt(
      `issuers: [{ id: x, type: internal, lifetime: soon }]\n${certs}`,
      'issuers[0].lifetime',
      /must be a duration/,
    );
    refusedAt(
      `issuers: [{ id: x, type: internal, lifetime: 10ms }]\n${certs}`,
      'issuers[0].lifetime',
      /at least 1000 ms/,
    );
    const acme = (extra: string) => `issuers: [{ id: le, type: acme, ${extra} }]\n${certs}`;
    refusedAt(
      acme('directory: "https://a/d", challenges: [{ type: http-01 }]'),
      'issuers[0].agreeToTerms',
      /is required/,
    );
    refusedAt(
      acme('directory: "http://a/d", agreeToTerms: true, challenges: [{ type: http-01 }]'),
      'issuers[0].directory',
      /allowHttp/,
    );
    refusedAt(
      acme('directory: "https://a/d", agreeToTerms: true, challenges: []'),
      'issuers[0].challenges',
      /at least one/,
    );
    refusedAt(
      acme('directory: "https://a/d", agreeToTerms: true, challenges: [{ type: tls-alpn-01 }]'),
      'issuers[0].challenges[0].type',
      /one of http-01, dns-01/,
    );
    refusedAt(
      acme('directory: "https://a/d", agreeToTerms: true, challenges: [{ type: dns-01 }]'),
      'issuers[0].challenges[0].rfc2136',
      /exactly one DNS provider/,
    );
    refusedAt(
      acme(
        'directory: "https://a/d", agreeToTerms: true, email: "mailto:x", challenges: [{ type: http-01 }]',
      ),
      'issuers[0].email',
      /e-mail/,
    );
    refusedAt(
      `issuers: [{ id: s, type: step-ca, url: "https://ca:9000" }]\n${certs}`,
      'issuers[0].rootFingerprint',
      /rootFile is required/,
    );
    refusedAt(`issuers: [{ id: f, type: files, chain: /c }]\n${certs}`, 'issuers[0].key', /non-empty string/);
  });

  it('a file that is not YAML is refused with its position, not its content', () => {
    const error = refusedAt(
      'store: file:/s\ncertificates: [\n  secretvalue: {',
      '(file)',
      /not valid YAML or JSON at line \d+/,
    );
    expect(error.message).not.toContain('secretvalue');
    refusedAt('- a\n- b\n', '(file)', /mapping/);
  });

  it('issuers are built, and an option their constructors refuse is named by its path in the file', () => {
    const config = load(`store: file:/s
issuers:
  - { id: ca, type: internal, lifetime: 2h }
  - { id: certbot, type: files, chain: "live/{id}/fullchain.pem", key: "live/{id}/privkey.pem" }
  - { id: le, type: acme, directory: "https://acme.test/dir", agreeToTerms: true, challenges: [{ type: http-01, port: 0 }] }
certificates: [{ names: [a.test] }]
`);
    const built = buildIssuers(config);
    expect(built.byId.get('ca')!.id).toBe('internal-certkeeper-internal');
    expect(built.byId.get('le')!.id).toBe('https://acme.test/dir');
    expect((built.byId.get('certbot') as unknown as { files(id: string): unknown }).files('web')).toEqual({
      chain: join(dir, 'live/web/fullchain.pem'),
      key: join(dir, 'live/web/privkey.pem'),
    });
    expect(built.listeners).toHaveLength(1);
    const bad = load(`store: file:/s
issuers: [{ id: s, type: step-ca, url: "https://ca.test:9000", rootFingerprint: "not-hex" }]
certificates: [{ names: [a.test] }]
`);
    expect(() => buildIssuers(bad)).toThrow(
      /option issuers\[0\] is refused: StepCaIssuer option rootFingerprint/,
    );
    const missingRoot = load(`store: file:/s
issuers: [{ id: le, type: acme, directory: "https://a/d", agreeToTerms: true, caFile: nope.pem, challenges: [{ type: http-01 }] }]
certificates: [{ names: [a.test] }]
`);
    expect(() => buildIssuers(missingRoot)).toThrow(
      /issuers\[0\]\.caFile\[0\] names a file that cannot be read/,
    );
  });
});
