// The deployment examples kept honest without containers: the compose example's agent
// configuration loads with the agent's loader (with its Docker secret), its targets write the
// files nginx.conf reads, and that nginx.conf passes Debian's `nginx -t` with a certificate at
// those paths. The systemd units run the commands and flags the agent has.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config-file.js';
import { buildTargets } from '../../src/agent/targets.js';
import { AGENT_USAGE } from '../../src/cli/agent-command.js';
import { makePki } from '../support/pki.js';
import { requireTools } from '../support/system-tools.js';

const examples = fileURLToPath(new URL('../../examples', import.meta.url));
const compose = (name: string) => readFileSync(join(examples, 'docker-compose', name), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'certkeeper-examples-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// The Docker secret compose mounts at /run/secrets/…: here a file with a key.
writeFileSync(join(tmp, 'encryption.key'), 'ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleTEyMzQ=\n');

function composeConfig() {
  const text = compose('certkeeper.yaml').replace(
    '/run/secrets/certkeeper_encryption_key',
    join(tmp, 'encryption.key'),
  );
  return parseAgentConfig(text, join(tmp, 'certkeeper.yaml'), { env: {}, cwd: tmp });
}

describe('examples/docker-compose', () => {
  it('the agent configuration loads: the secret, the certificate, its nginx target and the health port', () => {
    const config = composeConfig();
    expect(config.store).toEqual({
      url: 'file:/var/lib/certkeeper/store',
      encryptionKey: 'ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleTEyMzQ=',
    });
    expect(config.health?.port).toBe(8080);
    expect(compose('compose.yaml')).toContain('"--health-port", "8080"');
    const [web] = config.certificates;
    expect(web).toMatchObject({ id: 'web', names: ['web.internal'] });
    expect(web!.targets).toEqual([
      expect.objectContaining({
        dir: '/certs/web',
        reload: [{ kind: 'signal', options: { pidFile: '/run/nginx/nginx.pid', signal: 'SIGHUP' } }],
        verify: [{ host: 'nginx', port: 8443, servername: 'web.internal' }],
      }),
    ]);
    // nginx reads the files the target writes, and writes the pidfile the target signals.
    const nginx = compose('nginx.conf');
    const files = web!.targets[0]!.files as Record<string, string>;
    expect(nginx).toContain(`ssl_certificate /certs/web/${files.fullchain};`);
    expect(nginx).toContain(`ssl_certificate_key /certs/web/${files.privkey};`);
    expect(nginx).toContain('pid /run/nginx/nginx.pid;');
    expect(nginx).toContain('listen 8443 ssl;');
  });

  it("the targets are built with this build's deploy factories", () => {
    const web = composeConfig().certificates[0]!;
    expect(buildTargets('web', web.targets, 'certificates[0].targets', 'certkeeper.yaml')).toHaveLength(1);
  });

  it('nginx.conf passes `nginx -t` with a certificate and key where the agent writes them', async (t) => {
    const tools = requireTools(['nginx'] as const, 'nginx', "the compose example's nginx.conf checks");
    if (!tools) return t.skip();
    const pki = await makePki({ names: ['web.internal'] });
    const root = join(tmp, 'nginx');
    mkdirSync(join(root, 'certs/web'), { recursive: true });
    mkdirSync(join(root, 'run/nginx'), { recursive: true });
    mkdirSync(join(root, 'tmp'), { recursive: true });
    writeFileSync(join(root, 'certs/web/fullchain.pem'), pki.chainPem);
    writeFileSync(join(root, 'certs/web/privkey.pem'), pki.keyPem, { mode: 0o600 });
    // The container's absolute paths, moved below a temporary root.
    const conf = compose('nginx.conf')
      .replaceAll(' /tmp/', ` ${root}/tmp/`)
      .replaceAll(' /certs/', ` ${root}/certs/`)
      .replaceAll(' /run/nginx/', ` ${root}/run/nginx/`)
      // The container's standard output (a pipe here may not be opened by path).
      .replaceAll(' /dev/stdout;', ` ${root}/access.log;`);
    writeFileSync(join(root, 'nginx.conf'), conf);
    const run = spawnSync(
      tools.nginx,
      ['-t', '-q', '-e', 'stderr', '-p', root, '-c', join(root, 'nginx.conf')],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // And the check has teeth: a key that is not the certificate's fails it.
    writeFileSync(join(root, 'certs/web/privkey.pem'), (await makePki()).keyPem);
    const bad = spawnSync(
      tools.nginx,
      ['-t', '-q', '-e', 'stderr', '-p', root, '-c', join(root, 'nginx.conf')],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/key values mismatch/);
  });
});

describe('the configurations shown in the README and docs/agent.md', () => {
  const blocks = (file: string) =>
    [
      ...readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8').matchAll(
        /```yaml\n([\s\S]*?)```/g,
      ),
    ].map((m) => m[1]!);
  it("load with the agent's loader", () => {
    const readme = blocks('README.md')
      .find((b) => b.startsWith('# certkeeper.yaml'))!
      .replace('/run/secrets/key', join(tmp, 'encryption.key'));
    expect(
      parseAgentConfig(readme, join(tmp, 'readme.yaml'), { env: {}, cwd: tmp }).certificates[0]!.targets[0]!
        .dir,
    ).toBe('/certs/web');
    const [full, files] = blocks('docs/agent.md');
    const config = parseAgentConfig(
      full!.replace('/run/secrets/certkeeper_encryption_key', join(tmp, 'encryption.key')),
      join(tmp, 'docs.yaml'),
      { env: {}, cwd: tmp },
    );
    expect(config.certificates.map((c) => [c.id, c.issuers])).toEqual([
      ['web', ['letsencrypt']],
      ['api-client', ['internal']],
    ]);
    expect(config.reconcileIntervalMs).toBe(60_000);
    const certbot = parseAgentConfig(`store: file:/s\n${files}`, join(tmp, 'files.yaml'), {
      env: {},
      cwd: tmp,
    });
    expect(certbot.issuers[0]).toMatchObject({
      type: 'files',
      chain: '/etc/letsencrypt/live/{id}/fullchain.pem',
    });
  });
});

describe('examples/systemd and the Dockerfile', () => {
  const unit = (name: string) => readFileSync(join(examples, 'systemd', name), 'utf8');
  it('run the agent with options it has, and reload with SIGHUP', () => {
    const service = unit('certkeeper-agent.service');
    expect(service).toMatch(
      /^ExecStart=\/usr\/bin\/certkeeper agent --config \S+ --health-port 8080 --log-format json$/m,
    );
    expect(service).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit('certkeeper-renew.service')).toMatch(
      /^ExecStart=\/usr\/bin\/certkeeper agent --once --config /m,
    );
    expect(unit('certkeeper-renew.timer')).toMatch(/^OnCalendar=/m);
    for (const flag of ['--config', '--once', '--health-port', '--log-format'])
      expect(AGENT_USAGE).toContain(flag);
    const dockerfile = readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20-slim$/m);
    expect(dockerfile).toMatch(/^USER certkeeper$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/cli\/index.js"\]$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
  });
});
