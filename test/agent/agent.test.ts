// The agent in-process, on a FileStore with the embedded CA: a reload keeps unchanged issuers
// (their objects, so their state) and served certificates, moves a certificate whose issuer list
// changed to another manager, and refuses a change of store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config-file.js';
import { openAgentStore } from '../../src/agent/store.js';
import { silentLogger } from '../../src/logger.js';

describe('Agent', () => {
  let dir: string;
  let agent: Agent;
  const load = (text: string) => parseAgentConfig(text, join(dir, 'certkeeper.yaml'), { env: {}, cwd: dir });
  const issuers = `issuers:
  - { id: ca, type: internal }
  - { id: other, type: internal, name: other-ca }
`;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-agent-inproc-'));
    const config = load(
      `store: file:./store\n${issuers}certificates:\n  - { id: a, names: [a.test] }\n  - { id: b, names: [b.test] }\n`,
    );
    agent = new Agent(config, {
      store: openAgentStore(config.store, dir, silentLogger),
      logger: silentLogger,
      keepAlive: false,
    });
    await agent.start();
    await Promise.all(['a', 'b'].map((id) => agent.managerOf(id).ready([id])));
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const serial = (id: string) => agent.status().find((s) => s.id === id)?.serial;

  it('a reload keeps what did not change and moves what did', async () => {
    const a = serial('a');
    const manager = agent.managerOf('a');
    const changes = await agent.reload(
      load(
        `store: file:./store\n${issuers}certificates:\n  - { id: a, names: [a.test] }\n  - { id: b, names: [b.test], issuer: other }\n  - { id: c, names: [c.test] }\n`,
      ),
    );
    expect(changes).toEqual({ added: ['c'], removed: [], replaced: ['b'] });
    expect(agent.managerOf('a')).toBe(manager);
    expect(agent.managerOf('c')).toBe(manager);
    expect(agent.managerOf('b')).not.toBe(manager);
    await agent.managerOf('b').ready(['b']);
    expect(agent.status().find((s) => s.id === 'b')!.issuer).toBe('internal-other-ca');
    expect(serial('a')).toBe(a);
    expect(
      (
        await agent.reload(
          load(`store: file:./store\n${issuers}certificates:\n  - { id: a, names: [a.test] }\n`),
        )
      ).removed.sort(),
    ).toEqual(['b', 'c']);
    expect(agent.status().map((s) => s.id)).toEqual(['a']);
  });

  it('refuses a change of store and keeps running', async () => {
    await expect(
      agent.reload(load('store: file:./elsewhere\ncertificates: [{ id: a, names: [a.test] }]\n')),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'store' },
    });
    expect(agent.status().map((s) => s.id)).toEqual(['a']);
  });
});
