// `certkeeper agent` as it runs in a container or under systemd: the built CLI with a FileStore
// and the embedded CA. It starts and serves /healthz, /readyz and the status page, logs one JSON
// object per line, reloads its configuration on SIGHUP (adding and removing certificates
// without touching the served ones, refusing a bad file), and stops cleanly on SIGTERM.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCertificates } from '../../src/cli/stored.js';
import { FileStore } from '../../src/store/file-store.js';
import { assertBuilt, get, type RunningAgent, startAgent, until } from './support.js';

const WEB = `store: file:./store
certificates:
  - { id: web, names: [web.test] }
`;
const WEB_API = `${WEB}  - { id: api, names: [api.test], purpose: client }
`;

describe('certkeeper agent (the daemon)', () => {
  let dir: string;
  let agent: RunningAgent;
  let port: number;
  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-'));
    writeFileSync(join(dir, 'certkeeper.yaml'), WEB);
    agent = startAgent(
      ['--config', 'certkeeper.yaml', '--health-port', '0', '--health-host', '127.0.0.1'],
      dir,
    );
    port = (await agent.waitFor((l) => l.msg === 'agent: health listening')).port as number;
  }, 90_000);
  afterAll(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ready = async () =>
    JSON.parse((await get(port, '/readyz')).body) as {
      ready: boolean;
      certificates: { id: string; serial: string }[];
    };

  it('obtains the configured certificate, logs each event as one JSON line, and answers /healthz and /readyz', async () => {
    const obtained = await agent.waitFor((l) => l.event === 'obtained' && l.id === 'web');
    expect(obtained).toMatchObject({
      level: 'info',
      logger: 'certkeeper',
      msg: 'obtained',
      issuer: 'internal-certkeeper-internal',
    });
    expect(agent.lines.filter((l) => 'notJson' in l)).toEqual([]);
    const live = await get(port, '/healthz');
    expect([live.status, JSON.parse(live.body)]).toEqual([200, { status: 'ok' }]);
    const body = await until(async () => {
      const r = await ready();
      return r.ready ? r : undefined;
    }, '/readyz to say ready');
    expect(body.certificates).toEqual([
      expect.objectContaining({ id: 'web', ready: true, serial: obtained.serial }),
    ]);
    const page = await get(port, '/status/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('certkeeper agent');
    const json = JSON.parse((await get(port, '/status/status.json')).body);
    expect(JSON.stringify(json)).toContain(obtained.serial as string);
    // The store holds it where `certkeeper status` reads it.
    const stored = await readCertificates(new FileStore({ directory: join(dir, 'store') }));
    expect(stored.map((c) => [c.id, c.serial])).toEqual([['web', obtained.serial]]);
  });

  it('SIGHUP: adds and removes certificates; the served one stays; a bad file is refused and the agent goes on', async () => {
    const web = (await ready()).certificates.find((c) => c.id === 'web')!.serial;
    let from = agent.lines.length;
    writeFileSync(join(dir, 'certkeeper.yaml'), WEB_API);
    agent.child.kill('SIGHUP');
    const reloaded = await agent.waitFor((l) => l.msg === 'agent: configuration reloaded', from);
    expect(reloaded).toMatchObject({ added: ['api'], removed: [], replaced: [] });
    await agent.waitFor((l) => l.event === 'obtained' && l.id === 'api', from);
    const both = await until(async () => {
      const r = await ready();
      return r.ready && r.certificates.length === 2 ? r : undefined;
    }, 'both certificates ready');
    expect(both.certificates.find((c) => c.id === 'web')!.serial).toBe(web);
    expect(agent.lines.slice(from).some((l) => l.id === 'web' && l.event === 'obtained')).toBe(false);

    from = agent.lines.length;
    writeFileSync(join(dir, 'certkeeper.yaml'), `${WEB_API}  - { id: bad, names: ["not a name"] }\n`);
    agent.child.kill('SIGHUP');
    const refused = await agent.waitFor(
      (l) => String(l.msg).startsWith('agent: configuration reload refused'),
      from,
    );
    expect(refused).toMatchObject({ level: 'error', code: 'INVALID_OPTION' });
    expect(String(refused.error)).toContain('certificates[2].names[0]');
    expect((await ready()).certificates.map((c) => c.id).sort()).toEqual(['api', 'web']);

    from = agent.lines.length;
    writeFileSync(join(dir, 'certkeeper.yaml'), WEB);
    agent.child.kill('SIGHUP');
    expect(await agent.waitFor((l) => l.msg === 'agent: configuration reloaded', from)).toMatchObject({
      added: [],
      removed: ['api'],
    });
    const after = await ready();
    expect(after.certificates.map((c) => [c.id, c.serial])).toEqual([['web', web]]);
  });

  it('SIGTERM: stops cleanly with exit code 0 and says so', async () => {
    const from = agent.lines.length;
    expect(await agent.stop()).toBe(0);
    expect(agent.lines.slice(from).map((l) => l.msg)).toEqual(['agent: stopping', 'agent: stopped']);
    await expect(get(port, '/healthz')).rejects.toThrow();
  });
});
