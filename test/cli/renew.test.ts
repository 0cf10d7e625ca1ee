// certkeeper renew and revoke against the agent's configuration file, doing the real thing with
// the embedded CA: on a FileStore and on Redis they obtain through the configured issuer, store
// under the lock (a running agent adopts what they stored), and revoke through the issuer (the
// CA's revocation list has the serial; the store never serves it again).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCertificates } from '../../src/cli/stored.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { EncryptedStore } from '../../src/store/encrypted-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { assertBuilt, startAgent } from '../agent/support.js';
import { redisPeer } from '../support/services.js';
import { cli } from './support.js';

interface Setup {
  dir: string;
  store: Store;
  cleanup(): Promise<void>;
}

const certificates = `certificates:
  - { id: web, names: [web.test] }
  - { id: api, names: [api.test] }
reconcileInterval: 1s
`;

async function fileSetup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-renew-'));
  const key = randomBytes(32).toString('base64');
  writeFileSync(join(dir, 'enc.key'), `${key}\n`);
  writeFileSync(
    join(dir, 'certkeeper.yaml'),
    `store: { url: "file:./store", encryptionKeyFile: enc.key }\n${certificates}`,
  );
  const store = new EncryptedStore(new FileStore({ directory: join(dir, 'store') }), {
    keys: [key],
    logger: silentLogger,
  });
  return { dir, store, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function redisSetup(): Promise<Setup | null> {
  const url = await redisPeer();
  if (!url) return null;
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-renew-'));
  const key = randomBytes(32).toString('base64');
  const prefix = `certkeeper-renew-${randomUUID()}`;
  writeFileSync(
    join(dir, 'certkeeper.yaml'),
    `store: { url: "${url}", redisPrefix: ${prefix} }\n${certificates}`,
  );
  const store = new RedisStore({ url, prefix, encryption: { keys: [key] }, logger: silentLogger });
  return {
    dir,
    store,
    // The key comes from the environment, as in a container.
    cleanup: async () => {
      await store.close();
      const admin = new Redis(url);
      const keys = await admin.keys(`${prefix}:*`);
      if (keys.length > 0) await admin.unlink(...keys);
      await admin.quit();
      rmSync(dir, { recursive: true, force: true });
    },
    ...{ env: { CERTKEEPER_ENCRYPTION_KEY: key } },
  } as Setup;
}

const serials = async (store: Store) =>
  Object.fromEntries((await readCertificates(store)).map((c) => [c.id, c.serial]));

for (const kind of ['file', 'redis'] as const) {
  describe(`certkeeper renew and revoke on a ${kind} store`, () => {
    let s: Setup | null;
    let env: Record<string, string>;
    beforeAll(async () => {
      assertBuilt();
      s = kind === 'file' ? await fileSetup() : await redisSetup();
      env = (s as unknown as { env?: Record<string, string> })?.env ?? {};
    }, 60_000);
    afterAll(() => s?.cleanup());

    const run = (args: string[]) => cli([...args, '--config', 'certkeeper.yaml'], env, s!.dir);

    it('renew <id>: obtains through the configured issuer and stores it; --all renews every certificate', async (t) => {
      if (!s) return t.skip();
      const first = await run(['renew', 'web', '--json']);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const [web] = JSON.parse(first.stdout);
      expect(web).toMatchObject({ id: 'web', renewed: true, serial: expect.stringMatching(/^[0-9a-f]+$/) });
      // api was obtained too (it was missing), web was renewed on top of its first certificate.
      let stored = await serials(s.store);
      expect(stored.web).toBe(web.serial);
      const again = await run(['renew', 'web']);
      expect(again.stdout).toMatch(new RegExp(`^renewed web: serial [0-9a-f]+ \\(was ${web.serial}\\)\\n$`));
      const all = JSON.parse((await run(['renew', '--all', '--json'])).stdout) as {
        id: string;
        renewed: boolean;
        serial: string;
      }[];
      expect(all.map((r) => [r.id, r.renewed])).toEqual([
        ['web', true],
        ['api', true],
      ]);
      const before = stored;
      stored = await serials(s.store);
      expect(stored.web).not.toBe(before.web);
      expect(stored).toEqual(Object.fromEntries(all.map((r) => [r.id, r.serial])));
    }, 120_000);

    it('a running agent on the same store adopts what renew stored', async (t) => {
      if (!s) return t.skip();
      const agent = startAgent(['--config', 'certkeeper.yaml'], s.dir, env);
      try {
        await agent.waitFor((l) => l.msg === 'agent: started');
        const from = agent.lines.length;
        const renewed = JSON.parse((await run(['renew', 'api', '--json'])).stdout)[0];
        expect(renewed.renewed).toBe(true);
        const adopted = await agent.waitFor((l) => l.event === 'adopted' && l.id === 'api', from);
        expect(adopted.serial).toBe(renewed.serial);
      } finally {
        expect(await agent.stop()).toBe(0);
      }
    }, 120_000);

    it('revoke <id> --reason: revoked at the issuer, replaced, and gone from the store', async (t) => {
      if (!s) return t.skip();
      const old = (await serials(s.store)).web!;
      const revoked = await run(['revoke', 'web', '--reason', 'keyCompromise', '--json']);
      expect(revoked.stderr).toBe('');
      expect(revoked.code).toBe(0);
      const result = JSON.parse(revoked.stdout);
      expect(result).toMatchObject({ id: 'web', reason: 'keyCompromise', revokedSerial: old });
      expect(result.serial).not.toBe(old);
      expect(await new InternalCA().revokedSerials(s.store)).toContain(old);
      const stored = (await readCertificates(s.store)).find((c) => c.id === 'web')!;
      expect(stored.serial).toBe(result.serial);
      expect(stored.revoked).toContain(old);
    }, 120_000);

    it('usage and unknown ids', async (t) => {
      if (!s) return t.skip();
      expect((await run(['renew'])).code).toBe(2);
      expect((await run(['renew', 'web', '--all'])).code).toBe(2);
      expect((await run(['revoke', 'web', '--reason', 'boredom'])).stderr).toMatch(/--reason must be one of/);
      const unknown = await run(['renew', 'nope']);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/no certificate "nope" in .*certkeeper\.yaml \(UNKNOWN_CERTIFICATE\)/);
    }, 60_000);
  });
}
