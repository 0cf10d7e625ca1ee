// The configuration's targets: entries turned into deploy targets: each entry becomes one
// fileTarget with its reload recipes, an option a factory refuses is named by its path, and a
// running agent deploys every new certificate of the entry to its files through the manager.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config-file.js';
import { openAgentStore } from '../../src/agent/store.js';
import type { TargetFactories } from '../../src/agent/target-specs.js';
import { attachTargets, buildTargets } from '../../src/agent/targets.js';
import { inspectCertificate } from '../../src/crypto/inspect.js';
import type { DeployTarget } from '../../src/deploy/target.js';
import { optionError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import type { CertificateManager } from '../../src/manager/manager.js';

const TEXT = `store: file:/tmp/certkeeper-agent-targets-never-created
certificates:
  - id: web
    names: [web.test]
    targets:
      - dir: /srv/certs/web
        files: { combined: true }
        reload: [{ nginx: { config: /etc/nginx/nginx.conf } }, { command: { argv: [/bin/true] } }]
        verify: [{ host: 127.0.0.1, port: 8443 }]
`;
const config = () => parseAgentConfig(TEXT, '/etc/certkeeper.yaml', { env: {}, cwd: '/' });

describe('deploy targets from the configuration', () => {
  it('a running agent writes each new certificate of a targets: entry to its files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-deploy-'));
    try {
      const c = parseAgentConfig(
        'store: file:./store\ncertificates:\n  - id: web\n    names: [web.test]\n    targets:\n      - dir: ./certs\n',
        join(dir, 'certkeeper.yaml'),
        { env: {}, cwd: dir },
      );
      const agent = new Agent(c, {
        store: openAgentStore(c.store, dir, silentLogger),
        logger: silentLogger,
        keepAlive: false,
      });
      try {
        await agent.start();
        const manager = agent.managerOf('web');
        await manager.ready(['web']);
        const onDisk = () =>
          inspectCertificate(readFileSync(join(dir, 'certs/fullchain.pem'), 'utf8')).serialNumber;
        const first = agent.status().find((s) => s.id === 'web')!.serial;
        expect(onDisk()).toBe(first);
        await manager.renewNow('web');
        const second = agent.status().find((s) => s.id === 'web')!.serial;
        expect(second).not.toBe(first);
        expect(onDisk()).toBe(second);
      } finally {
        await agent.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('each entry becomes one fileTarget for its certificate, with its reload recipes in order', () => {
    const calls: [string, unknown][] = [];
    const recipe = (name: string) => (options: Record<string, unknown>) => {
      calls.push([name, options]);
      return { run: async () => {}, name };
    };
    const factories: TargetFactories = {
      fileTarget: (options) => {
        calls.push(['fileTarget', options]);
        return { name: 'files:web' } as DeployTarget;
      },
      nginxReload: recipe('nginxReload'),
      commandReload: recipe('commandReload'),
    };
    const c = config().certificates[0]!;
    const targets = buildTargets(
      'web',
      c.targets,
      'certificates[0].targets',
      '/etc/certkeeper.yaml',
      factories,
    );
    expect(targets.map((t) => t.name)).toEqual(['files:web']);
    expect(calls.map(([name]) => name)).toEqual(['nginxReload', 'commandReload', 'fileTarget']);
    expect(calls[2]![1]).toMatchObject({
      ids: ['web'],
      dir: '/srv/certs/web',
      files: { combined: true },
      reload: [{ name: 'nginxReload' }, { name: 'commandReload' }],
      verify: [{ host: '127.0.0.1', port: 8443 }],
    });
    const refusing: TargetFactories = {
      ...factories,
      commandReload: () => {
        throw optionError('argv', 'must name an executable', 'commandReload');
      },
    };
    expect(() =>
      buildTargets('web', c.targets, 'certificates[0].targets', '/etc/certkeeper.yaml', refusing),
    ).toThrow(
      /certkeeper\.yaml option certificates\[0\]\.targets\[0\]\.reload\[1\]\.command is refused: commandReload option argv/,
    );
  });

  it('targets go to the manager through addTarget, and are removed and closed together', () => {
    const log: string[] = [];
    const host = {
      addTarget: (t: DeployTarget) => {
        log.push(`add ${t.name}`);
        return () => log.push(`remove ${t.name}`);
      },
    } as unknown as CertificateManager;
    const target = (name: string) =>
      ({
        name,
        close: async () => {
          log.push(`close ${name}`);
        },
      }) as unknown as DeployTarget;
    const detach = attachTargets(host, [target('t1'), target('t2')]);
    expect(log).toEqual(['add t1', 'add t2']);
    detach();
    expect(log).toEqual(['add t1', 'add t2', 'remove t1', 'remove t2', 'close t1', 'close t2']);
  });
});
