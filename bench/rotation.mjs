// Request latency while the certificate is hot-swapped, against the same server not swapping.
//
// A certkeeper-managed HTTPS server (createHttpsServer, InternalCA, FileStore in a temp dir)
// serves `localhost`. A forked client (bench/rotation-client.mjs) keeps 16 requests in flight,
// half on keep-alive connections and half on a new connection each, every one verifying the
// chain against the CA root; it records each request's latency and outcome. Phases:
//
//   warmup         discarded (JIT, first connections); includes 20 swaps, which also time one
//   steady-before  no swaps, as long as BENCH_ROTATIONS swaps are expected to take (at least
//                  BENCH_PHASE_MS, at most 30 s)
//   swapping       manager.renewNow() back to back (each: new key, issuance, validation, atomic
//                  store commit, context build, setSecureContext, live-verify handshake) until
//                  at least BENCH_ROTATIONS swaps and the steady-before length have passed
//   steady-after   no swaps, as long as the swapping phase took
//
// Back-to-back swaps (~10 a second here) are a stress test: far more rotation work than any
// real deployment does, all of it on the server's own process.
//
// The client and the server are pinned to a CPU each (bench/lib/harness.mjs, pinClientAndServer):
// the server's swap work then competes with its own serving only, on one core, as it would on a
// machine of its own, instead of starving the load client, whose delayed timestamps would count
// as latency the server never added. BENCH_PIN=0 runs them unpinned, sharing every CPU.
//
// The steady baseline is measured both before and after the swapping phase and pooled: on a
// shared 2-core machine the load from other processes drifts over a run, and the process itself
// warms up (JIT) and grows (heap, store directory) over time. One steady phase on one side would
// charge all of that drift to (or credit it against) the swaps; bracketing the swapping phase
// spreads it evenly. The p99 of each steady phase is printed too, so a lopsided drift shows.
//
// Environment: BENCH_PHASE_MS (minimum phase length, default 5000), BENCH_ROTATIONS (minimum
// swaps, default 200), BENCH_CONCURRENCY (requests in flight, default 16), BENCH_WARMUP_MS
// (default 2000), BENCH_SWAP_GAP_MS (pause between swaps, default 0), BENCH_PIN (0: do not pin),
// BENCH_CPU_PROF (a file to write this process's CPU profile of the swapping phase to).
// Last line: `rotations: <n> requests: <n> failed: <n> p99 ratio swapping/steady: <number>`.

import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  envNumber,
  forkClient,
  importCertkeeper,
  pinClientAndServer,
  readyOrFail,
  runBenchmark,
} from './lib/harness.mjs';

const PHASE_MS = envNumber('BENCH_PHASE_MS', 5000);
const MIN_ROTATIONS = envNumber('BENCH_ROTATIONS', 200);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 16);
const WARMUP_MS = envNumber('BENCH_WARMUP_MS', 2000);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const SWAP_GAP_MS = Number(process.env.BENCH_SWAP_GAP_MS ?? 0);
const WARMUP_SWAPS = 20;
/** Bounds of the steady-before length, and of the swapping phase if swaps are slow. */
const MAX_PHASE_MS = 30_000;
const MAX_SWAP_MS = 120_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (ms) => `${ms.toFixed(2)} ms`;

await runBenchmark(async (onCleanup) => {
  const { createCertificateManager, createHttpsServer, FileStore, InternalCA, silentLogger } =
    await importCertkeeper();
  const directory = mkdtempSync(join(tmpdir(), 'certkeeper-bench-rotation-'));
  onCleanup(() => rmSync(directory, { recursive: true, force: true }));

  const ca = new InternalCA({ name: 'bench-rotation' });
  const manager = createCertificateManager({
    store: new FileStore({ directory }),
    issuer: ca,
    certificates: [{ id: 'web', names: ['localhost'] }],
    logger: silentLogger,
  });
  let rotations = 0;
  const failures = [];
  manager.on('swapped', (e) => {
    if (e.previousSerial !== null) rotations++;
    if (e.verified !== e.servers) failures.push(`swap ${e.serial} verified on ${e.verified}/${e.servers}`);
  });
  manager.on('renewalFailed', (e) => failures.push(`renewalFailed ${e.error.code}: ${e.error.message}`));
  manager.on('rolledBack', (e) => failures.push(`rolledBack ${e.reason.code}: ${e.reason.message}`));
  await manager.start();
  onCleanup(() => manager.stop());
  await readyOrFail(manager);
  const root = await ca.rootCertificate();

  const server = createHttpsServer(manager, {}, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  );

  const client = forkClient(fileURLToPath(new URL('./rotation-client.mjs', import.meta.url)));
  onCleanup(() => client.kill());
  const pinning = pinClientAndServer(client.pid);
  // Server-side facts per phase: CPU use of this process and event-loop delay (how long a
  // ready callback waited), to tell queueing on a busy process from blocking by the swaps.
  const serverSide = {};
  let current = null;
  const phase = async (name) => {
    await client.request({ type: 'phase', name });
    if (current) {
      const cpu = process.cpuUsage(current.cpu);
      const wallMs = performance.now() - current.wall;
      current.delay.disable();
      serverSide[current.name] = {
        cpu: (cpu.user + cpu.system) / 1000 / wallMs,
        delayP99: current.delay.percentile(99) / 1e6,
        delayMax: current.delay.max / 1e6,
      };
    }
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    current = { name, cpu: process.cpuUsage(), wall: performance.now(), delay };
  };

  console.log(
    `rotation benchmark: ${CONCURRENCY} requests in flight (half keep-alive, half new connections), ` +
      `at least ${MIN_ROTATIONS} swaps, phases of at least ${PHASE_MS} ms, node ${process.version}`,
  );
  console.log(pinning);
  await phase('warmup');
  await client.request({ type: 'start', port: server.address().port, ca: root, concurrency: CONCURRENCY });
  // A few swaps under load during the warm-up: the rotation path gets compiled too, and their
  // pace sizes the steady-before phase to the length the swapping phase will have.
  // The first swaps run cold, so only the later ones are timed.
  const warmupStart = performance.now();
  for (let i = 0; i < WARMUP_SWAPS / 2; i++) await manager.renewNow('web');
  const timedStart = performance.now();
  for (let i = 0; i < WARMUP_SWAPS / 2; i++) await manager.renewNow('web');
  const perSwapMs = (performance.now() - timedStart) / (WARMUP_SWAPS / 2);
  await sleep(Math.max(0, WARMUP_MS - (performance.now() - warmupStart)));
  const phaseMs = Math.min(MAX_PHASE_MS, Math.max(PHASE_MS, Math.ceil(perSwapMs * MIN_ROTATIONS)));

  await phase('steady-before');
  await sleep(phaseMs);

  await phase('swapping');
  const profiler = CPU_PROF ? new Session() : null;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  const swapStart = performance.now();
  const before = rotations;
  const failuresBefore = failures.length;
  while (performance.now() - swapStart < phaseMs || rotations - before < MIN_ROTATIONS) {
    if (performance.now() - swapStart > MAX_SWAP_MS) {
      console.log(`swapping phase cut at ${MAX_SWAP_MS} ms before reaching ${MIN_ROTATIONS} swaps`);
      break;
    }
    if (failures.length - failuresBefore > 20) {
      console.log('swapping phase cut: more than 20 failed renewals');
      break;
    }
    // A failed swap rejects; it is counted (and reported) through the events above.
    await manager.renewNow('web').catch(() => {});
    if (SWAP_GAP_MS > 0) await sleep(SWAP_GAP_MS);
  }
  const swapMs = performance.now() - swapStart;
  const swaps = rotations - before;
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(CPU_PROF, JSON.stringify(profile));
    profiler.disconnect();
  }

  await phase('steady-after');
  await sleep(swapMs);
  await phase('stopping');
  const { phases } = await client.request({
    type: 'stop',
    pools: { steady: ['steady-before', 'steady-after'] },
  });

  const names = ['steady-before', 'swapping', 'steady-after'];
  for (const name of names) {
    const p = phases[name];
    console.log(
      `${name.padEnd(13)} ${String(p.requests).padStart(6)} requests  failed ${p.failed}  ` +
        `p50 ${fmt(p.p50)}  p99 ${fmt(p.p99)}  max ${fmt(p.max)}` +
        (p.failed ? `  errors ${JSON.stringify(p.errors)}` : ''),
    );
  }
  for (const name of names) {
    const d = serverSide[name];
    console.log(
      `${name.padEnd(13)} server process: cpu ${(d.cpu * 100).toFixed(0)}%  ` +
        `event-loop delay p99 ${fmt(d.delayP99)}  max ${fmt(d.delayMax)}`,
    );
  }
  console.log(
    `swapping phase: ${swaps} swaps in ${(swapMs / 1000).toFixed(1)} s ` +
      `(${(swapMs / Math.max(1, swaps)).toFixed(1)} ms per renewNow)`,
  );
  for (const f of failures.slice(0, 5)) console.log(`manager: ${f}`);

  const steadyP99 = phases.steady.p99;
  const requests = names.reduce((n, name) => n + phases[name].requests, 0);
  const failed = names.reduce((n, name) => n + phases[name].failed, 0);
  console.log(`steady p99 (before and after pooled): ${fmt(steadyP99)}`);
  console.log(
    `rotations: ${swaps} requests: ${requests} failed: ${failed} ` +
      `p99 ratio swapping/steady: ${(phases.swapping.p99 / steadyP99).toFixed(3)}`,
  );
});
