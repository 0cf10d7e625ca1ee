// The daemon serving certificates another tool writes (a `files` issuer, certbot's layout): it
// starts with what the files hold and, when the tool writes a new pair, logs the change naming
// the files and renews to it, without a restart or a signal.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki } from '../support/pki.js';
import { assertBuilt, type RunningAgent, startAgent } from './support.js';

describe('certkeeper agent with a files issuer', () => {
  let dir: string;
  let agent: RunningAgent;
  const live = () => join(dir, 'live/site');
  const write = (p: { chainPem: string; keyPem: string }) => {
    writeFileSync(join(live(), 'fullchain.pem'), p.chainPem);
    writeFileSync(join(live(), 'privkey.pem'), p.keyPem);
  };
  beforeAll(() => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-files-'));
    mkdirSync(live(), { recursive: true });
  });
  afterAll(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the files, then follows a new pair the tool writes', async () => {
    const first = await makePki({ names: ['site.test'] });
    write(first);
    writeFileSync(
      join(dir, 'certkeeper.yaml'),
      `store: file:./store
issuers: [{ id: certbot, type: files, chain: "live/{id}/fullchain.pem", key: "live/{id}/privkey.pem" }]
certificates: [{ id: site, names: [site.test], issuer: certbot }]
`,
    );
    agent = startAgent(['--config', 'certkeeper.yaml'], dir);
    const obtained = await agent.waitFor((l) => l.event === 'obtained' && l.id === 'site');
    expect(obtained.serial).toBe(first.leaf.certificate.info.serialNumber);
    const from = agent.lines.length;
    const second = await makePki({ names: ['site.test'] });
    write(second);
    const changed = await agent.waitFor((l) => l.msg === 'files hold a new certificate', from);
    expect(changed).toMatchObject({
      id: 'site',
      serial: second.leaf.certificate.info.serialNumber,
      chainFile: join(live(), 'fullchain.pem'),
      keyFile: join(live(), 'privkey.pem'),
    });
    const renewed = await agent.waitFor((l) => l.event === 'renewed' && l.id === 'site', from);
    expect(renewed).toMatchObject({
      serial: second.leaf.certificate.info.serialNumber,
      previousSerial: obtained.serial,
    });
    expect(await agent.stop()).toBe(0);
  }, 120_000);
});
