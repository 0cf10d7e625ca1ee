// bench:scale: 10,000 managed certificates in a FileStore and in Redis. The set-up issues them
// once (the embedded CA, 30-day certificates) and writes them in the manager's store layout;
// each measurement then runs in a fresh process (bench/scale-child.mjs).
// Last line: `scale certs: N startup ms: <worst of the two stores> rss MiB: <worst> sni lookup us: <worst>`.
// Goals: startup ≤ 2000 ms, RSS ≤ 300 MiB, SNI lookup ≤ 5 µs. Baseline in the same run: the RSS
// of the same Node process with the package imported and nothing managed.
//
// Env: BENCH_SCALE_N (default 10000).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createCertificateManager, InternalCA, MemoryStore, silentLogger } from 'certkeeper';
import { RedisStore } from 'certkeeper/stores';

const N = Number(process.env.BENCH_SCALE_N ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-scale-'));
const prefix = `bench-scale-${process.pid}`;
const child = (args) =>
  JSON.parse(
    execFileSync(process.execPath, ['bench/scale-child.mjs', ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    })
      .trim()
      .split('\n')
      .at(-1),
  );

try {
  // The set-up is the real path — a manager obtains every certificate from the embedded CA —
  // into memory; the result is then written out as FileStore files (mode 0600 in 0700 dirs,
  // without FileStore's per-file fsync, which would make the set-up take minutes) and into Redis.
  const memory = new MemoryStore();
  const names = Array.from({ length: N }, (_, i) => `c${i}.scale.test`);
  const setup = createCertificateManager({
    store: memory,
    issuer: new InternalCA({ name: 'scale', lifetimeMs: 30 * 86_400_000 }),
    certificates: names.map((name) => ({ id: name, names: [name] })),
    logger: silentLogger,
    concurrency: 8,
    reconcileIntervalMs: 0,
  });
  const t0 = performance.now();
  let obtained = 0;
  setup.on('obtained', () => {
    if (++obtained % 2000 === 0) console.log(`set-up: ${obtained}/${N} certificates obtained`);
  });
  await setup.start();
  await setup.ready();
  while (setup.status().some((s) => s.renewing)) await new Promise((r) => setTimeout(r, 50));
  await setup.stop();
  const keys = await memory.list('');
  for (const key of keys) {
    const file = join(dir, ...key.split('/'));
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, (await memory.get(key)) ?? new Uint8Array(), { mode: 0o600 });
  }
  console.log(`set-up took ${((performance.now() - t0) / 1000).toFixed(1)} s (${keys.length} store entries)`);

  const redis = new RedisStore({ url: 'redis://127.0.0.1:6379', prefix, encryption: false });
  for (let i = 0; i < keys.length; i += 200) {
    await Promise.all(
      keys.slice(i, i + 200).map(async (k) => redis.put(k, (await memory.get(k)) ?? new Uint8Array())),
    );
  }
  await redis.close();

  const baseline = child(['file', dir, '0']);
  const results = [child(['file', dir, String(N)]), child(['redis', prefix, String(N)])];
  console.log(`baseline (package loaded, nothing managed): rss ${baseline.rss.toFixed(1)} MiB`);
  for (const r of results) {
    console.log(
      `${r.kind.padEnd(5)} startup ${r.startupMs.toFixed(0)} ms, rss ${r.rss.toFixed(1)} MiB (${(r.rss - baseline.rss).toFixed(1)} over baseline; ${r.rssAfter.toFixed(1)} after a full pass), ` +
        `sni lookup ${r.lookupUs.toFixed(3)} µs, first handshakes ${r.handshakeTimes.map((t) => t.toFixed(1)).join('/')} ms, maintenance pass ${r.maintenanceMs.toFixed(0)} ms, issued at start ${r.issued}`,
    );
    if (r.issued !== 0)
      throw new Error(`${r.kind}: the manager re-issued ${r.issued} certificates instead of loading them`);
  }
  const worst = (f) => Math.max(...results.map(f));
  console.log(
    `scale certs: ${N} startup ms: ${worst((r) => r.startupMs).toFixed(0)} rss MiB: ${worst((r) => r.rss).toFixed(1)} sni lookup us: ${worst((r) => r.lookupUs).toFixed(3)}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  const redis = new RedisStore({ url: 'redis://127.0.0.1:6379', prefix, encryption: false });
  for (const k of await redis.list('')) await redis.delete(k);
  await redis.close();
}
