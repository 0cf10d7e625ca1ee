// On-demand certificates at handshake time: certkeeper's coordinator (embedded CA, FileStore)
// against Caddy (`tls internal { on_demand }` with an `ask` endpoint, its own file storage), in
// the same run, on loopback, both measured by one forked client process:
//
// - first handshake for a new name (one after another, BENCH_N names each): p50 and p99;
// - 50 new names at once: how many were not served their own certificate (errors, or another
//   certificate), and the slowest;
// - a flood of names the decision refuses, against handshakes on a cached name, alternating one
//   by one (so both see the same load): the rate of each (certkeeper serves refused names its
//   default certificate; Caddy ends those handshakes with an alert, which is counted as done).
//
// The on-demand module is not in the package's entry points yet (it is wired into the manager
// later), so it is bundled from src/ with esbuild for this run.
//
// Last line: `ondemand first-handshake p50 ms: <x> p99 ms: <x> caddy p50 ms: <x> ratio:
// <certkeeper/caddy p50> concurrent-50 failed: <n> denied-flood ratio: <denied rate / cached
// rate>`. Goals: ratio ≤ 1.0, p99 ≤ 15 ms, 0 failed of 50 (all within 150 ms), flood ratio ≥ 0.9.
//
// Env: BENCH_N (40 new names, sequential), BENCH_FLOOD (300 refused names, as many cached).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { envNumber, forkClient, percentile, runBenchmark } from './lib/harness.mjs';
import { freePort } from './lib/pebble.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const N = envNumber('BENCH_N', 40);
const FLOOD = envNumber('BENCH_FLOOD', 300);
const CONCURRENT = 50;

// ---- the load client (forked) ----
const clientContext = tls.createSecureContext({});

function handshake(port, servername, timeoutMs = 10_000) {
  return new Promise((done) => {
    const started = performance.now();
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      secureContext: clientContext,
      rejectUnauthorized: false,
    });
    const end = (result) => {
      socket.destroy();
      done({ ms: performance.now() - started, ...result });
    };
    socket.once('secureConnect', () => end({ san: socket.getPeerCertificate().subjectaltname ?? '' }));
    socket.once('error', (error) => end({ error: error.code ?? error.message }));
    socket.setTimeout(timeoutMs, () => end({ error: 'timeout' }));
  });
}

async function clientCommand({ kind, port, names }) {
  if (kind === 'parallel') return Promise.all(names.map((n) => handshake(port, n)));
  const results = [];
  const started = performance.now();
  for (const name of names) results.push(await handshake(port, name));
  return { results, elapsedMs: performance.now() - started };
}

// ---- the servers ----
async function bundle(dir) {
  const { build } = await import('esbuild');
  const outdir = join(dir, 'dist');
  await build({
    entryPoints: {
      ondemand: join(ROOT, 'src/on-demand/index.ts'),
      ca: join(ROOT, 'src/issuers/internal-ca.ts'),
      store: join(ROOT, 'src/store/file-store.ts'),
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir,
    logLevel: 'error',
  });
  // Bare imports in the bundle resolve through this link to the project's dependencies.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return outdir;
}

const allowed = (name) => name.endsWith('.ok.bench');

function defaultCertificate(dir) {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=default.bench',
      '-days',
      '2',
      '-keyout',
      'default.key',
      '-out',
      'default.crt',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  return tls.createSecureContext({
    cert: execFileSync('cat', ['default.crt'], { cwd: dir }),
    key: execFileSync('cat', ['default.key'], { cwd: dir }),
  });
}

async function startCertkeeper(dir, register) {
  const dist = await bundle(dir);
  const { IssuerHost, OnDemandCoordinator, onDemandSniCallback } = await import(join(dist, 'ondemand.js'));
  const { InternalCA } = await import(join(dist, 'ca.js'));
  const { FileStore } = await import(join(dist, 'store.js'));
  const store = new FileStore({ directory: join(dir, 'store') });
  const host = new IssuerHost({ issuer: new InternalCA(), store });
  const coordinator = new OnDemandCoordinator(host, {
    decide: allowed,
    limits: { perDomain: 1000, global: 1000 },
  });
  const server = tls.createServer({
    SNICallback: onDemandSniCallback(coordinator, { defaultContext: defaultCertificate(dir) }),
  });
  server.on('tlsClientError', () => {});
  const port = await new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server.address().port)));
  register(async () => {
    await new Promise((ok) => server.close(ok));
    await coordinator.close();
  });
  return { port, coordinator };
}

async function startCaddy(dir, register) {
  const ask = http.createServer((req, res) => {
    const domain = new URL(req.url, 'http://x').searchParams.get('domain') ?? '';
    res.writeHead(allowed(domain) ? 200 : 403).end();
  });
  const askPort = await new Promise((ok) => ask.listen(0, '127.0.0.1', () => ok(ask.address().port)));
  register(() => new Promise((ok) => ask.close(ok)));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const config = `{
\tadmin off
\tstorage file_system {
\t\troot ${join(dir, 'storage')}
\t}
\tskip_install_trust
\thttp_port ${httpPort}
\thttps_port ${httpsPort}
\tauto_https disable_redirects
\ton_demand_tls {
\t\task http://127.0.0.1:${askPort}/ask
\t}
}
https:// {
\tbind 127.0.0.1
\ttls internal {
\t\ton_demand
\t}
\trespond "ok"
}
`;
  writeFileSync(join(dir, 'Caddyfile'), config);
  mkdirSync(join(dir, 'home'));
  const env = {
    ...process.env,
    HOME: join(dir, 'home'),
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config'),
  };
  const caddy = spawn(
    '/usr/bin/caddy',
    ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
    { env, stdio: 'ignore' },
  );
  register(() => caddy.kill('SIGTERM'));
  return { port: httpsPort, caddy };
}

// ---- the measurements ----
const names = (tag, count) => Array.from({ length: count }, (_, i) => `${tag}${i}-${process.pid}.ok.bench`);
const servedOwn = (r, name) => !r.error && r.san.split(', ').includes(`DNS:${name}`);

async function firstHandshakes(client, port, tag) {
  const list = names(tag, N);
  const { results } = (await client.request({ kind: 'sequential', port, names: list })).result;
  const ok = results
    .filter((r, i) => servedOwn(r, list[i]))
    .map((r) => r.ms)
    .sort((a, b) => a - b);
  return { p50: percentile(ok, 50), p99: percentile(ok, 99), failed: N - ok.length };
}

async function concurrent(client, port, tag) {
  const list = names(tag, CONCURRENT);
  const results = (await client.request({ kind: 'parallel', port, names: list })).result;
  const failed = results.filter((r, i) => !servedOwn(r, list[i])).length;
  return {
    failed,
    slowest: Math.max(...results.map((r) => r.ms)),
    errors: [...new Set(results.map((r) => r.error).filter(Boolean))],
  };
}

/**
 * Handshakes on a cached name and on refused random names, alternating one by one so both see the
 * same load on a shared machine; the rate of each is the inverse of its mean handshake time.
 */
async function cachedVersusDenied(client, port, cachedName) {
  const list = Array.from({ length: 2 * FLOOD }, (_, i) =>
    i % 2 ? `x${i}-${Math.random().toString(36).slice(2)}.denied.bench` : cachedName,
  );
  const { results } = (await client.request({ kind: 'sequential', port, names: list })).result;
  const perSecond = (kind) => {
    const mine = results.filter((_, i) => i % 2 === kind);
    return (mine.length * 1000) / mine.reduce((sum, r) => sum + r.ms, 0);
  };
  const failedCached = results.filter((r, i) => i % 2 === 0 && !servedOwn(r, cachedName)).length;
  return {
    cached: perSecond(0),
    denied: perSecond(1),
    failedCached,
    deniedErrors: results.filter((r, i) => i % 2 && r.error).length,
  };
}

async function waitUntilServing(client, port, name) {
  for (let i = 0; i < 100; i++) {
    const { results } = (await client.request({ kind: 'sequential', port, names: [name] })).result;
    if (servedOwn(results[0], name)) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`nothing serves ${name} on port ${port}`);
}

async function main(register) {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-ondemand-'));
  register(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'ck'));
  mkdirSync(join(dir, 'caddy'));
  const client = forkClient(fileURLToPath(import.meta.url));
  register(() => client.kill());
  const ck = await startCertkeeper(join(dir, 'ck'), register);
  const caddy = await startCaddy(join(dir, 'caddy'), register);
  console.log(
    `load: ${execFileSync('cat', ['/proc/loadavg']).toString().trim()} (the machine is shared; figures are relative)`,
  );
  // Warm both CAs (root and intermediate are made on first use) and wait until Caddy listens.
  await waitUntilServing(client, ck.port, `warm-${process.pid}.ok.bench`);
  await waitUntilServing(client, caddy.port, `warm-${process.pid}.ok.bench`);

  const ckFirst = await firstHandshakes(client, ck.port, 'ck-first');
  const caddyFirst = await firstHandshakes(client, caddy.port, 'cd-first');
  console.log(
    `first handshake, ${N} new names one after another: certkeeper p50 ${ckFirst.p50.toFixed(2)} ms p99 ${ckFirst.p99.toFixed(2)} ms (failed ${ckFirst.failed}); caddy p50 ${caddyFirst.p50.toFixed(2)} ms p99 ${caddyFirst.p99.toFixed(2)} ms (failed ${caddyFirst.failed})`,
  );

  const ckPar = await concurrent(client, ck.port, 'ck-par');
  const caddyPar = await concurrent(client, caddy.port, 'cd-par');
  console.log(
    `${CONCURRENT} new names at once: certkeeper failed ${ckPar.failed}, slowest ${ckPar.slowest.toFixed(0)} ms; caddy failed ${caddyPar.failed} ${JSON.stringify(caddyPar.errors)}, slowest ${caddyPar.slowest.toFixed(0)} ms`,
  );

  const ckRates = await cachedVersusDenied(client, ck.port, `ck-first0-${process.pid}.ok.bench`);
  const caddyRates = await cachedVersusDenied(client, caddy.port, `cd-first0-${process.pid}.ok.bench`);
  const floodRatio = ckRates.denied / ckRates.cached;
  console.log(
    `handshakes/s, one at a time, cached and refused names alternating: certkeeper cached ${ckRates.cached.toFixed(0)} (not served ${ckRates.failedCached}), refused ${ckRates.denied.toFixed(0)} (errors ${ckRates.deniedErrors}); ` +
      `caddy cached ${caddyRates.cached.toFixed(0)}, refused ${caddyRates.denied.toFixed(0)} (alerts ${caddyRates.deniedErrors})`,
  );
  const status = ck.coordinator.status();
  console.log(
    `certkeeper after the run: in memory ${status.inMemory}, denied names remembered ${status.denied}, orders ${status.counts.ordered}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
  console.log(
    `ondemand first-handshake p50 ms: ${ckFirst.p50.toFixed(2)} p99 ms: ${ckFirst.p99.toFixed(2)} caddy p50 ms: ${caddyFirst.p50.toFixed(2)} ratio: ${(ckFirst.p50 / caddyFirst.p50).toFixed(2)} concurrent-50 failed: ${ckPar.failed} denied-flood ratio: ${floodRatio.toFixed(2)}`,
  );
}

// Forked with an IPC channel: this process is the load client.
if (process.send) {
  process.on('message', (message) =>
    clientCommand(message).then(
      (result) => process.send({ type: 'result', result }),
      (error) => process.send({ type: 'error', message: String(error) }),
    ),
  );
} else {
  await runBenchmark(main);
}
