// ACME issuance against Pebble, certkeeper (HTTP-01) against lego and certbot (Debian's, each
// binding Pebble's HTTP-01 port itself) in the same run, twice:
//
// 1. VA sleeps off (PEBBLE_VA_NOSLEEP=1): the CA answers in milliseconds, so what is measured is
//    the client. certkeeper: BENCH_N certificates one after another, then BENCH_N with 8 in
//    parallel; lego and certbot: BENCH_OTHERS_N each, one after another.
// 2. VA sleeps on (Pebble's default): each of Pebble's three validations of an authorization
//    waits 0-4 s first, as a real CA takes seconds. certkeeper: BENCH_SLEEP_N one after another;
//    lego and certbot as above. Pebble's own time per certificate is measured at our HTTP-01
//    server: from the start of the issuance to Pebble's last validation request, after which it
//    marks the authorization valid. What certkeeper adds to it is its own time minus that.
//
// Pebble rejects 5 % of nonces (its default): certkeeper and lego retry a `badNonce`; certbot 2.1
// gives up the certificate, which shows as its failure count.
//
// Last line: `issuance p50 ms: <sleeps off, sequential> throughput/s: <8 in parallel> lego ratio:
// <lego's time per certificate ÷ certkeeper's> | sleeps on: p50 ms: <certkeeper> pebble p50 ms:
// <Pebble's own> over ms: <difference of the two>`. Goals: p50 ≤ 100 ms, ratio ≥ 20, over ≤ 300.
//
// Env: BENCH_N (30), BENCH_SLEEP_N (12), BENCH_OTHERS_N (3).
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { certbot, lego } from './lib/acme-clients.mjs';
import { envNumber, importCertkeeper, median, runBenchmark } from './lib/harness.mjs';
import { freePort, startPebble } from './lib/pebble.mjs';

const N = envNumber('BENCH_N', 30);
const SLEEP_N = envNumber('BENCH_SLEEP_N', 12);
const OTHERS_N = envNumber('BENCH_OTHERS_N', 3);
const PARALLEL = 8;

const ms = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

await runBenchmark(async (onCleanup) => {
  // The root waits for the build; the ACME issuer and the toolkit are subpath entries of it.
  const ck = {
    ...(await importCertkeeper()),
    ...(await import('certkeeper/acme')),
    ...(await import('certkeeper/crypto')),
  };
  const off = await phase(ck, onCleanup, { sleeps: false, n: N, parallel: true });
  const on = await phase(ck, onCleanup, { sleeps: true, n: SLEEP_N, parallel: false });

  for (const [label, r] of [
    ['VA sleeps off', off],
    ['VA sleeps on', on],
  ]) {
    console.log(`\n${label}:`);
    console.log(
      `  certkeeper: ${r.certkeeper.length} one after another, p50 ${ms(median(r.certkeeper))} ms, max ${ms(Math.max(...r.certkeeper))} ms`,
    );
    if (r.pebble) {
      const over = r.certkeeper.map((t, i) => t - r.pebble[i]);
      console.log(
        `  Pebble's own validation: p50 ${ms(median(r.pebble))} ms (min ${ms(Math.min(...r.pebble))}, max ${ms(Math.max(...r.pebble))}); certkeeper after it: p50 ${ms(median(over))} ms, max ${ms(Math.max(...over))} ms`,
      );
    }
    if (r.throughput)
      console.log(`  certkeeper ${PARALLEL} in parallel: ${r.throughput.toFixed(1)} certificates/s`);
    for (const other of r.others) {
      const okTimes = other.runs.filter((x) => x.ok).map((x) => x.ms);
      const failed = other.runs.filter((x) => !x.ok);
      const reasons = [...new Set(failed.map((x) => x.why))].join('; ');
      console.log(
        `  ${other.name}: ${okTimes.length}/${other.runs.length} issued, p50 ${ms(median(okTimes))} ms${failed.length ? `, ${failed.length} failed (${reasons})` : ''}`,
      );
    }
  }

  const legoOff = off.others.find((o) => o.name === 'lego').runs.filter((x) => x.ok);
  const ratio = legoOff.length ? mean(legoOff.map((x) => x.ms)) / mean(off.certkeeper) : Number.NaN;
  const onP50 = median(on.certkeeper);
  const pebbleP50 = median(on.pebble);
  console.log(
    `\nissuance p50 ms: ${median(off.certkeeper).toFixed(1)} throughput/s: ${off.throughput.toFixed(1)} lego ratio: ${ratio.toFixed(1)} | sleeps on: p50 ms: ${ms(onP50)} pebble p50 ms: ${ms(pebbleP50)} over ms: ${ms(onP50 - pebbleP50)}`,
  );
});

/** One Pebble, certkeeper then the other clients against it. */
async function phase(ck, onCleanup, { sleeps, n, parallel }) {
  const httpPort = await freePort();
  const pebble = await startPebble({
    httpPort,
    tlsPort: await freePort(),
    env: sleeps ? { PEBBLE_VA_NOSLEEP: undefined } : {},
  });
  onCleanup(() => pebble.stop());
  console.log(`Pebble with VA sleeps ${sleeps ? 'on' : 'off'}: certkeeper…`);

  const store = new ck.MemoryStore();
  const handler = ck.createHttp01Handler(store);
  // Pebble's validation requests, by arrival: the last one before an authorization turns valid.
  let validations = [];
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/.well-known/acme-challenge/')) validations.push(performance.now());
    handler(req, res);
  });
  await new Promise((resolve) => server.listen(httpPort, '127.0.0.1', resolve));
  const issuer = new ck.AcmeIssuer({
    directoryUrl: pebble.directoryUrl,
    agreeToTerms: true,
    ca: pebble.ca,
    challenges: [new ck.Http01Solver()],
  });
  const signal = new AbortController().signal;
  setMaxListeners(0, signal); // one signal shared by concurrent orders, unlike the manager's per-attempt ones
  const context = { store, clock: ck.systemClock, logger: ck.silentLogger, signal };
  let serial = 0;
  const issueOne = async () => {
    const name = `c${serial++}-${process.pid}.bench.test`;
    validations = [];
    const started = performance.now();
    const key = await ck.PrivateKey.generate();
    const csr = await ck.createCsr({ key, names: [name] });
    await issuer.issue({ id: name, names: [name], purpose: 'server', keyType: 'ec-p256', key, csr }, context);
    return { ms: performance.now() - started, pebbleMs: Math.max(...validations) - started };
  };

  await issueOne(); // account registration and connection warm-up, not measured
  const results = [];
  for (let i = 0; i < n; i++) results.push(await issueOne());
  let throughput;
  if (parallel) {
    let remaining = n;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (remaining-- > 0) await issueOne();
      }),
    );
    throughput = n / ((performance.now() - start) / 1000);
  }
  await new Promise((resolve) => server.close(resolve));
  await issuer.close();

  const others = [];
  for (const make of [lego, certbot]) {
    const client = make(pebble, httpPort);
    console.log(`Pebble with VA sleeps ${sleeps ? 'on' : 'off'}: ${client.name}…`);
    const runs = [];
    for (let i = 0; i < OTHERS_N; i++)
      runs.push(await client.issue(`${client.name}${serial++}-${process.pid}.bench.test`));
    client.close();
    others.push({ name: client.name, runs });
  }
  pebble.stop();
  return {
    certkeeper: results.map((r) => r.ms),
    pebble: sleeps ? results.map((r) => r.pebbleMs) : undefined,
    throughput,
    others,
  };
}
