// Issuance against one Pebble (PEBBLE_VA_NOSLEEP=1) in the same run: N certificates one after
// another with certkeeper (HTTP-01), N with 8 in parallel, and a few one after another with lego
// (Debian's `lego`, HTTP-01 on Pebble's httpPort), the tool a user would otherwise reach for.
// Last line: `issuance p50 ms: <p50 sequential> throughput/s: <8-parallel> lego ratio: <certkeeper
// sequential throughput ÷ lego sequential throughput>`.
//
// Env: BENCH_N (default 30), BENCH_LEGO_N (default 3: lego takes seconds per certificate).
import { execFileSync } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AcmeIssuer,
  createCsr,
  createHttp01Handler,
  Http01Solver,
  MemoryStore,
  PrivateKey,
  silentLogger,
  systemClock,
} from 'certkeeper';
import { freePort, startPebble } from './lib/pebble.mjs';

const N = Number(process.env.BENCH_N ?? 30);
const LEGO_N = Number(process.env.BENCH_LEGO_N ?? 3);
const PARALLEL = 8;

const httpPort = await freePort();
const pebble = await startPebble({ httpPort, tlsPort: await freePort() });
const store = new MemoryStore();
const handler = createHttp01Handler(store);
const issuer = new AcmeIssuer({
  directoryUrl: pebble.directoryUrl,
  agreeToTerms: true,
  ca: pebble.ca,
  challenges: [new Http01Solver()],
});
const signal = new AbortController().signal;
setMaxListeners(0, signal); // one signal shared by 8 concurrent orders, unlike the manager's per-attempt ones
const context = { store, clock: systemClock, logger: silentLogger, signal };

let serial = 0;
async function issueOne() {
  const name = `c${serial++}-${process.pid}.bench.test`;
  const started = performance.now();
  const key = await PrivateKey.generate();
  const csr = await createCsr({ key, names: [name] });
  await issuer.issue({ id: name, names: [name], purpose: 'server', keyType: 'ec-p256', key, csr }, context);
  return performance.now() - started;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve) => server.listen(httpPort, '127.0.0.1', resolve));
  await issueOne(); // account registration and connection warm-up, not measured

  const sequential = [];
  const seqStart = performance.now();
  for (let i = 0; i < N; i++) sequential.push(await issueOne());
  const seqSeconds = (performance.now() - seqStart) / 1000;
  console.log(
    `certkeeper sequential: ${N} in ${seqSeconds.toFixed(2)} s, p50 ${median(sequential).toFixed(1)} ms, max ${Math.max(...sequential).toFixed(1)} ms`,
  );

  let remaining = N;
  const parStart = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (remaining-- > 0) await issueOne();
    }),
  );
  const parSeconds = (performance.now() - parStart) / 1000;
  console.log(
    `certkeeper ${PARALLEL} in parallel: ${N} in ${parSeconds.toFixed(2)} s, ${(N / parSeconds).toFixed(1)}/s`,
  );
  await new Promise((resolve) => server.close(resolve));
  await issuer.close();

  // lego binds the HTTP-01 port itself.
  const legoDir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-lego-'));
  const legoStart = performance.now();
  for (let i = 0; i < LEGO_N; i++) {
    execFileSync(
      'lego',
      [
        '--server',
        pebble.directoryUrl,
        '--email',
        'bench@bench.test',
        '--accept-tos',
        '--domains',
        `lego${i}-${process.pid}.bench.test`,
        '--http',
        '--http.port',
        `127.0.0.1:${httpPort}`,
        '--path',
        legoDir,
        'run',
      ],
      { env: { ...process.env, LEGO_CA_CERTIFICATES: pebble.caFile }, stdio: 'pipe' },
    );
  }
  const legoSeconds = (performance.now() - legoStart) / 1000;
  rmSync(legoDir, { recursive: true, force: true });
  const legoRate = LEGO_N / legoSeconds;
  console.log(
    `lego sequential: ${LEGO_N} in ${legoSeconds.toFixed(2)} s, ${(legoSeconds / LEGO_N).toFixed(2)} s each`,
  );
  const ratio = N / seqSeconds / legoRate;
  console.log(
    `issuance p50 ms: ${median(sequential).toFixed(1)} throughput/s: ${(N / parSeconds).toFixed(1)} lego ratio: ${ratio.toFixed(1)}`,
  );
} finally {
  pebble.stop();
}
