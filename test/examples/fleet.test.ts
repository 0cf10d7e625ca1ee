// examples/fleet.mjs: two replica processes on one Redis, then on one PostgreSQL. One issues, both
// serve that certificate (trusted through the root `certkeeper export-root` reads from the shared
// store with the encryption key); a renewal on one replica reaches the other through the store.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, postgresPeer, redisPeer } from '../support/services.js';
import {
  cleanup,
  cli,
  type Example,
  hexSerial,
  httpsGet,
  requireBuild,
  startExample,
  tempDir,
} from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

interface Fleet {
  url: string;
  /** Redis key prefix or PostgreSQL table. */
  prefix: string;
  /** The CLI's option naming that prefix. */
  prefixOption: string;
  drop(): Promise<void>;
}

async function runFleet(fleet: Fleet): Promise<void> {
  const dir = tempDir('fleet');
  const key = randomBytes(32).toString('base64');
  writeFileSync(join(dir, 'key'), key, { mode: 0o600 });
  const env = (name: string) => ({
    STORE: fleet.url,
    STORE_PREFIX: fleet.prefix,
    CERTKEEPER_ENCRYPTION_KEY: key,
    NAME: name,
    PORT: '0',
  });
  try {
    const replicas: Example[] = [startExample('fleet.mjs', env('a')), startExample('fleet.mjs', env('b'))];
    const ports = await Promise.all(
      replicas.map(async (r, i) =>
        Number((await r.waitFor(new RegExp(`${'ab'[i]}: listening on https://localhost:(\\d+)/`)))[1]),
      ),
    );
    const issued = replicas.flatMap((r) =>
      [...r.output().matchAll(/: issued serial ([0-9a-f]+)/g)].map((m) => m[1]!),
    );
    expect(issued).toHaveLength(1); // one order for the fleet

    const root = await cli([
      'export-root',
      '--store',
      fleet.url,
      fleet.prefixOption,
      fleet.prefix,
      '--encryption-key-file',
      join(dir, 'key'),
    ]);
    for (const [i, port] of ports.entries()) {
      const answer = await httpsGet(port, '/', { ca: root });
      expect([answer.body, answer.serial]).toEqual([`hello from ${'ab'[i]}\n`, hexSerial(issued[0]!)]);
    }

    // A renewal on a reaches b through the store.
    replicas[0]!.child.kill('SIGHUP');
    const renewed = new RegExp(`a: serving serial (?!${issued[0]}\\n)([0-9a-f]+)\\n`);
    const next = (await replicas[0]!.waitFor(renewed))[1]!;
    await replicas[1]!.waitFor(new RegExp(`b: adopted serial ${next} from another replica`));
    await eventually(
      async () => expect((await httpsGet(ports[1]!, '/', { ca: root })).serial).toBe(hexSerial(next)),
      30_000,
    );

    for (const r of replicas) expect(await r.stop()).toEqual({ code: 0, signal: null });
  } finally {
    await fleet.drop();
  }
}

describe('examples/fleet.mjs', () => {
  it('on Redis: two replicas, one order, one certificate served by both, a renewal spread', {
    timeout: 180_000,
  }, async () => {
    const url = await redisPeer();
    if (!url) return;
    const prefix = `ck-example-${randomBytes(4).toString('hex')}`;
    await runFleet({
      url,
      prefix,
      prefixOption: '--redis-prefix',
      drop: async () => {
        const redis = new Redis(url, { lazyConnect: true });
        await redis.connect();
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.del(...keys);
        redis.disconnect();
      },
    });
  });

  it('on PostgreSQL: two replicas, one order, one certificate served by both, a renewal spread', {
    timeout: 180_000,
  }, async () => {
    const url = await postgresPeer();
    if (!url) return;
    const table = `ck_example_${randomBytes(4).toString('hex')}`;
    await runFleet({
      url,
      prefix: table,
      prefixOption: '--pg-table',
      drop: async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP TABLE IF EXISTS "${table}", "${table}_locks"`);
        await client.end();
      },
    });
  });
});
