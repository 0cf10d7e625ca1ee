// Full TLS handshakes per second: a certkeeper-managed server against a bare tls.Server.
//
//   bare     tls.createServer({ key, cert }) serving, statically, the very key and chain
//            (P-256 leaf + intermediate from the InternalCA) the managed SNI route serves
//   sni      createTlsServer(manager): the client sends a name the manager maps to a non-default
//            certificate, so every handshake runs certkeeper's SNICallback (name index → current
//            generation → cached SecureContext)
//   default  the same managed server, reached with a name the default certificate covers (the
//            SNICallback answers "use the server's own context")
//
// Both servers live in this process; the load comes from a forked client (bench/handshake-
// client.mjs) so client and server never share an event loop. Every handshake is a full one
// (no session offered, none resumed). The variants run in alternating order over several rounds
// and medians are compared, so drift on a shared machine hits all of them alike.
//
// Environment: BENCH_ROUNDS (default 6), BENCH_ROUND_MS (default 3000), BENCH_CONCURRENCY
// (connections in flight, default 16), BENCH_WARMUP_MS (per variant, default 1000), BENCH_METRICS=1
// (the prom-client collector and the diagnostics channels on, with a subscriber, and a scrape
// every second, as a monitored production process has them).
// Last line: `handshake ratio managed/bare: <median sni / median bare>` (goal >= 0.97).

import { once } from 'node:events';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  envNumber,
  forkClient,
  importCertkeeper,
  median,
  readyOrFail,
  runBenchmark,
} from './lib/harness.mjs';

const ROUNDS = envNumber('BENCH_ROUNDS', 6);
const ROUND_MS = envNumber('BENCH_ROUND_MS', 3000);
const CONCURRENCY = envNumber('BENCH_CONCURRENCY', 16);
const WARMUP_MS = envNumber('BENCH_WARMUP_MS', 1000);

const DEFAULT_NAME = 'default.bench.test';
const SNI_NAME = 'sni.bench.test';

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
}

/** Per-server handshake failures (clients cut off at the end of a round show up here). */
function instrument(server) {
  const counts = { clientErrors: 0 };
  server.on('tlsClientError', () => counts.clientErrors++);
  return counts;
}

// Both servers answer each completed handshake with one byte (the client counts a handshake
// when it arrives) and ignore the resets of clients that hang up right after it.
const onSecureConnection = (socket) => {
  socket.on('error', () => {});
  socket.end('k');
};

await runBenchmark(async (onCleanup) => {
  const { createCertificateManager, createTlsServer, InternalCA, MemoryStore, silentLogger } =
    await importCertkeeper();
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer: new InternalCA({ name: 'bench-handshake' }),
    certificates: [
      { id: 'default', names: [DEFAULT_NAME] },
      { id: 'sni', names: [SNI_NAME] },
    ],
    logger: silentLogger,
  });
  if (process.env.BENCH_METRICS === '1') {
    const { createPrometheusCollector } = await import('certkeeper/metrics');
    const { publishDiagnostics, DIAGNOSTIC_CHANNELS } = await import('certkeeper');
    const { Registry } = await import('prom-client');
    const { subscribe } = await import('node:diagnostics_channel');
    const collector = await createPrometheusCollector(manager, { registry: new Registry() });
    publishDiagnostics(manager);
    subscribe(DIAGNOSTIC_CHANNELS.deploy, () => {});
    const scrape = setInterval(() => void collector.registry.metrics(), 1000);
    onCleanup(() => clearInterval(scrape));
    console.log('metrics on: prom-client collector, diagnostics channels, a scrape every second');
  }
  await manager.start();
  onCleanup(() => manager.stop());
  await readyOrFail(manager);

  const managed = createTlsServer(manager, {}, onSecureConnection);
  const credentials = manager.credentials('sni');
  const bare = tls.createServer(
    { key: credentials.key.toPem(), cert: credentials.chainPem },
    onSecureConnection,
  );
  const managedErrors = instrument(managed);
  const bareErrors = instrument(bare);
  const managedPort = await listen(managed);
  onCleanup(() => new Promise((r) => managed.close(r)));
  const barePort = await listen(bare);
  onCleanup(() => new Promise((r) => bare.close(r)));

  const variants = {
    bare: { port: barePort, servername: SNI_NAME, fingerprint: manager.certificate('sni').fingerprint256 },
    sni: { port: managedPort, servername: SNI_NAME, fingerprint: manager.certificate('sni').fingerprint256 },
    default: {
      port: managedPort,
      servername: DEFAULT_NAME,
      fingerprint: manager.certificate('default').fingerprint256,
    },
  };

  const client = forkClient(fileURLToPath(new URL('./handshake-client.mjs', import.meta.url)));
  onCleanup(() => client.kill());

  const measure = async (name, durationMs) => {
    const v = variants[name];
    const cpuStart = process.cpuUsage();
    const result = await client.request({
      type: 'run',
      port: v.port,
      servername: v.servername,
      durationMs,
      concurrency: CONCURRENCY,
      expectFingerprint: v.fingerprint,
    });
    const cpu = process.cpuUsage(cpuStart);
    if (result.wrongCert > 0) throw new Error(`${name}: the server did not serve the expected certificate`);
    if (result.reused > 0) throw new Error(`${name}: ${result.reused} handshakes resumed a session`);
    if (result.handshakes === 0) throw new Error(`${name}: no handshake completed (${result.firstError})`);
    return {
      rate: (result.handshakes * 1000) / result.elapsedMs,
      serverUs: (cpu.user + cpu.system) / result.handshakes,
      clientUs: result.cpuUs / result.handshakes,
      errors: result.errors,
      firstError: result.firstError,
      protocol: result.protocol,
    };
  };

  const order = ['bare', 'sni', 'default'];
  console.log(
    `handshake benchmark: ${ROUNDS} rounds x ${order.length} variants x ${ROUND_MS} ms, ` +
      `${CONCURRENCY} connections in flight, P-256 leaf + intermediate, node ${process.version}`,
  );
  for (const name of order) await measure(name, WARMUP_MS);

  const rates = { bare: [], sni: [], default: [] };
  const serverCpu = { bare: [], sni: [], default: [] };
  let protocol = null;
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order so no variant always runs first (or right after the same neighbour).
    const sequence = round % 2 === 1 ? order : [...order].reverse();
    for (const name of sequence) {
      const m = await measure(name, ROUND_MS);
      protocol ??= m.protocol;
      rates[name].push(m.rate);
      serverCpu[name].push(m.serverUs);
      console.log(
        `round ${round} ${name.padEnd(7)} ${m.rate.toFixed(0).padStart(6)} handshakes/s  ` +
          `server cpu ${m.serverUs.toFixed(0)} us/handshake  client cpu ${m.clientUs.toFixed(0)} us/handshake` +
          (m.errors ? `  client errors ${m.errors} (${m.firstError})` : ''),
      );
    }
  }

  const med = Object.fromEntries(order.map((n) => [n, median(rates[n])]));
  const cpuMed = Object.fromEntries(order.map((n) => [n, median(serverCpu[n])]));
  console.log(
    `protocol ${protocol}; server-side handshake errors: bare ${bareErrors.clientErrors}, ` +
      `managed ${managedErrors.clientErrors} (connections cut at round ends)`,
  );
  for (const name of order) {
    console.log(
      `median ${name.padEnd(7)} ${med[name].toFixed(0).padStart(6)} handshakes/s  ` +
        `server cpu ${cpuMed[name].toFixed(0)} us/handshake`,
    );
  }
  console.log(
    `server cpu per handshake managed/bare: sni ${(cpuMed.sni / cpuMed.bare).toFixed(3)}, ` +
      `default ${(cpuMed.default / cpuMed.bare).toFixed(3)}`,
  );
  // sni runs right next to bare in every round: the spread of these paired ratios shows how much
  // of any difference is noise.
  const paired = rates.sni.map((r, i) => r / rates.bare[i]).sort((a, b) => a - b);
  console.log(
    `per-round sni/bare ratios: min ${paired[0].toFixed(3)}  median ${median(paired).toFixed(3)}  ` +
      `max ${paired[paired.length - 1].toFixed(3)}`,
  );
  console.log(`default-cert ratio managed/bare: ${(med.default / med.bare).toFixed(3)}`);
  console.log(`handshake ratio managed/bare: ${(med.sni / med.bare).toFixed(3)}`);
});
