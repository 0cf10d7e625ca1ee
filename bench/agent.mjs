// Deploying to nginx and HAProxy under load: how long a rotation takes from writing the files to
// a live check that sees the new certificate, and what clients notice.
//
// Each server runs as a child process with its own configuration in a temp dir (never a system
// service), serving `localhost` over TLS on a free loopback port. Load during a phase: wrk with 8
// keep-alive connections, plus a forked Node client (bench/agent-client.mjs) making requests on a
// new connection each (a full handshake every time), 4 at once. Phases per server:
//
//   baseline   load, no rotation, as long as the rotating phase took (at least BENCH_PHASE_MS)
//   rotating   load while fileTarget rotates BENCH_ROTATIONS times back to back: a new
//              certificate from the embedded CA (issued before the phase), apply (write + flip
//              + reload) and verify (live handshakes every 20 ms until the new fingerprint is
//              served); deploy-to-verified is timed from the start of apply to the end of verify
//
// nginx is reloaded with `nginx -t` + `nginx -s reload`, HAProxy through its runtime API
// (`set ssl cert` + `commit ssl cert`, no reload). The ratio compares request throughput while
// rotating with the baseline measured in the same run. A failure is a request that did not get
// its 200: wrk's socket errors and non-2xx answers, the Node client's errors.
//
// Environment: BENCH_ROTATIONS (default 50), BENCH_PHASE_MS (minimum baseline, default 5000).
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envNumber, importCertkeeper, median, percentile, runBenchmark } from './lib/harness.mjs';

const ROTATIONS = envNumber('BENCH_ROTATIONS', 50);
const PHASE_MS = envNumber('BENCH_PHASE_MS', 5_000);

const which = (name) => {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    try {
      execFileSync('test', ['-x', join(dir, name)]);
      return join(dir, name);
    } catch {}
  }
  throw new Error(`${name} is not installed (Debian package ${name}): bench:agent needs it`);
};

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitListening(port, child, output) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    const up = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${port} did not come up: ${output()}`);
}

function startChild(argv) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out = (out + d).slice(-4000)));
  child.stderr.on('data', (d) => (out = (out + d).slice(-4000)));
  return { child, output: () => out };
}

const servers = {
  async nginx(work, dir, deploy) {
    const port = await freePort();
    const config = join(work, 'nginx.conf');
    writeFileSync(
      config,
      `daemon off; worker_processes 1; pid ${work}/nginx.pid; error_log ${work}/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path ${work}/body; proxy_temp_path ${work}/proxy;
  fastcgi_temp_path ${work}/fastcgi; uwsgi_temp_path ${work}/uwsgi; scgi_temp_path ${work}/scgi;
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${dir}/fullchain.pem;
    ssl_certificate_key ${dir}/privkey.pem; location / { return 200 "ok\\n"; } } }
`,
    );
    const binary = which('nginx');
    const started = startChild([binary, '-e', `${work}/error.log`, '-p', work, '-c', config]);
    await waitListening(port, started.child, started.output);
    return {
      port,
      started,
      reload: [deploy.nginxReload({ binary, prefix: work, config })],
      how: 'nginx -s reload',
    };
  },
  async haproxy(work, dir, deploy) {
    const port = await freePort();
    const socket = join(work, 'admin.sock');
    const config = join(work, 'haproxy.cfg');
    writeFileSync(
      config,
      `global
  stats socket ${socket} level admin
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend tls
  bind 127.0.0.1:${port} ssl crt ${dir}/combined.pem
  http-request return status 200 content-type text/plain string ok
`,
    );
    const started = startChild([which('haproxy'), '-db', '-f', config]);
    await waitListening(port, started.child, started.output);
    return {
      port,
      started,
      reload: [deploy.haproxyRuntimeApi({ socket: { path: socket } })],
      how: 'HAProxy runtime API',
    };
  },
};

/** Runs wrk (keep-alive) and the new-connection client until `stopWhen` resolves. */
async function underLoad(port, client, stopWhen) {
  const wrk = spawn(which('wrk'), ['-t1', '-c8', '-d600s', `https://127.0.0.1:${port}/`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let wrkOut = '';
  wrk.stdout.on('data', (d) => (wrkOut += d));
  wrk.stderr.on('data', (d) => (wrkOut += d));
  const wrkDone = new Promise((resolve) => wrk.once('exit', resolve));
  await client.request({ type: 'start', port });
  const started = performance.now();
  const extra = await stopWhen();
  const elapsedMs = performance.now() - started;
  wrk.kill('SIGINT');
  await wrkDone;
  const node = await client.request({ type: 'stop' });
  const requests = Number(/(\d+) requests in/.exec(wrkOut)?.[1] ?? Number.NaN);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(wrkOut);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(wrkOut)?.[1] ?? 0);
  const wrkFailed = (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  if (!Number.isFinite(requests)) throw new Error(`wrk printed no result: ${wrkOut}`);
  return {
    elapsedMs,
    requests: requests + node.ok + node.failed,
    failed: wrkFailed + node.failed,
    detail: `wrk ${requests} (${wrkFailed} failed${socketErrors ? `: ${socketErrors[0]}` : ''}${non2xx ? `, non-2xx ${non2xx}` : ''}), new-connection ${node.ok + node.failed} (${node.failed} failed${node.failed ? ` ${JSON.stringify(node.reasons)}` : ''})`,
    extra,
  };
}

function ipcClient(child) {
  let pending = null;
  child.on('message', (m) => {
    const p = pending;
    pending = null;
    p?.(m);
  });
  return {
    request(message) {
      return new Promise((resolve) => {
        pending = resolve;
        child.send(message);
      });
    },
  };
}

await runBenchmark(async (cleanup) => {
  const ck = await importCertkeeper();
  const deploy = await import('certkeeper/deploy');
  const ca = new ck.InternalCA({ name: 'bench-agent' });
  const store = new ck.MemoryStore();
  const context = () => ({
    store,
    clock: ck.systemClock,
    logger: ck.silentLogger,
    signal: new AbortController().signal,
  });
  async function issue() {
    const key = await ck.PrivateKey.generate();
    const names = ['localhost'];
    const csr = await ck.createCsr({ key, names });
    const { chainPem } = await ca.issue(
      { id: 'web', names, purpose: 'server', keyType: key.type, key, csr },
      context(),
    );
    const info = ck.inspectCertificate(chainPem);
    return { issuer: ca.id, chainPem, key, info, chain: [info] };
  }
  const child = fork(new URL('./agent-client.mjs', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanup(() => child.kill());
  const client = ipcClient(child);
  const lines = [];
  for (const name of ['nginx', 'haproxy']) {
    const work = mkdtempSync(join(tmpdir(), `certkeeper-bench-${name}-`));
    cleanup(() => rmSync(work, { recursive: true, force: true }));
    const dir = join(work, 'set');
    const files = { combined: name === 'haproxy' };
    await deploy
      .fileTarget({ ids: ['web'], dir, files })
      .apply('web', await issue(), AbortSignal.timeout(60_000));
    const server = await servers[name](work, dir, deploy);
    cleanup(() => server.started.child.kill('SIGKILL'));
    const target = deploy.fileTarget({
      name,
      ids: ['web'],
      dir,
      files,
      reload: server.reload,
      // Probing every 20 ms instead of the default 100 ms: the figure is the service's delay,
      // not the probe interval's.
      verify: [{ host: '127.0.0.1', port: server.port, servername: 'localhost', intervalMs: 20 }],
    });
    // Certificates are issued before the phase: the timed part is the deploy, not the CA.
    const generations = [];
    for (let i = 0; i < ROTATIONS; i++) generations.push(await issue());
    const rotating = await underLoad(server.port, client, async () => {
      const times = [];
      const applyTimes = [];
      for (const generation of generations) {
        const start = performance.now();
        const signal = AbortSignal.timeout(60_000);
        await target.apply('web', generation, signal);
        applyTimes.push(performance.now() - start);
        await target.verify('web', generation, signal);
        times.push(performance.now() - start);
      }
      return { times, applyTimes };
    });
    const baselineMs = Math.max(PHASE_MS, rotating.elapsedMs);
    const baseline = await underLoad(
      server.port,
      client,
      () => new Promise((r) => setTimeout(r, baselineMs)),
    );
    const rate = (phase) => phase.requests / (phase.elapsedMs / 1000);
    const sorted = [...rotating.extra.times].sort((a, b) => a - b);
    const applyP50 = median(rotating.extra.applyTimes);
    console.log(`${name} (${server.how})`);
    console.log(
      `  baseline, no rotation: ${baseline.requests} requests in ${(baseline.elapsedMs / 1000).toFixed(1)} s (${rate(baseline).toFixed(0)}/s), ${baseline.failed} failed; ${baseline.detail}`,
    );
    console.log(
      `  rotating: ${rotating.requests} requests in ${(rotating.elapsedMs / 1000).toFixed(1)} s (${rate(rotating).toFixed(0)}/s), ${rotating.failed} failed; ${rotating.detail}`,
    );
    console.log(
      `  throughput while rotating / baseline: ${(rate(rotating) / rate(baseline)).toFixed(2)}; deploy-to-verified p50 ${median(sorted).toFixed(1)} ms, p90 ${percentile(sorted, 90).toFixed(1)} ms, max ${sorted.at(-1).toFixed(1)} ms (apply alone p50 ${applyP50.toFixed(1)} ms)`,
    );
    lines.push(
      `agent rotations: ${sorted.length} requests: ${rotating.requests} failed: ${rotating.failed} deploy-to-verified p50 ms: ${median(sorted).toFixed(1)} (${name}: ${server.how}; baseline ${baseline.requests} requests, ${baseline.failed} failed)`,
    );
    server.started.child.kill('SIGTERM');
  }
  child.send({ type: 'exit' });
  for (const line of lines) console.log(line);
});
