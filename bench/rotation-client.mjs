// The load client of bench/rotation.mjs, forked so its event loop is not the server's.
// {type: 'start'} starts `concurrency` workers, each with one request in flight at a time:
// half reuse keep-alive connections (one shared keep-alive agent), half open a new connection
// for every request (a full handshake each time, no session cache). Every request verifies the
// server's chain against the CA root and the name `localhost`. {type: 'phase'} labels the
// requests started from then on; {type: 'stop'} waits for the requests in flight and answers
// with every phase's count, failures and latency percentiles (and of pooled phases it names).

import https from 'node:https';
import tls from 'node:tls';
import { percentile } from './lib/harness.mjs';

const TIMEOUT_MS = 10_000;

let phase = 'idle';
let running = false;
let workers = [];
let keepAlive = null;
/** phase → { latencies: number[], failed: number, errors: Map<string, number> } */
const results = new Map();

function record(label, latencyMs, error) {
  let r = results.get(label);
  if (!r) {
    r = { latencies: [], failed: 0, errors: new Map() };
    results.set(label, r);
  }
  r.latencies.push(latencyMs);
  if (error) {
    r.failed++;
    r.errors.set(error, (r.errors.get(error) ?? 0) + 1);
  }
}

function request(options) {
  return new Promise((resolve) => {
    const req = https.get(options, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`));
      res.once('error', (error) => resolve(error.code ?? error.message));
    });
    req.once('error', (error) => resolve(error.code ?? error.message));
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')));
  });
}

async function worker(options) {
  while (running) {
    const label = phase;
    const started = performance.now();
    const error = await request(options);
    record(label, performance.now() - started, error);
  }
}

function start({ port, ca, concurrency }) {
  // One client context shared by every request: the chain is verified against it, and no
  // context is built per connection (that would cost the client ~1 ms each).
  const secureContext = tls.createSecureContext({ ca });
  const keepAliveWorkers = Math.ceil(concurrency / 2);
  keepAlive = new https.Agent({ keepAlive: true, maxSockets: keepAliveWorkers });
  const base = { host: '127.0.0.1', port, servername: 'localhost', path: '/', secureContext };
  running = true;
  workers = Array.from({ length: concurrency }, (_, i) =>
    worker(i < keepAliveWorkers ? { ...base, agent: keepAlive } : { ...base, agent: false }),
  );
}

process.on('message', async (message) => {
  try {
    if (message?.type === 'start') {
      start(message);
      process.send({ type: 'ack' });
    } else if (message?.type === 'phase') {
      phase = message.name;
      process.send({ type: 'ack' });
    } else if (message?.type === 'stop') {
      running = false;
      await Promise.all(workers);
      keepAlive?.destroy();
      const phases = {};
      const summarize = (rs) => {
        const sorted = Float64Array.from(rs.flatMap((r) => r.latencies)).sort();
        const errors = {};
        for (const r of rs) for (const [e, n] of r.errors) errors[e] = (errors[e] ?? 0) + n;
        return {
          requests: sorted.length,
          failed: rs.reduce((n, r) => n + r.failed, 0),
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          max: sorted[sorted.length - 1],
          errors,
        };
      };
      for (const [label, r] of results) phases[label] = summarize([r]);
      // Pools asked for by the caller (e.g. both steady phases), over the raw latencies.
      for (const [label, parts] of Object.entries(message.pools ?? {})) {
        phases[label] = summarize(parts.map((part) => results.get(part)).filter(Boolean));
      }
      process.send({ type: 'result', phases });
    }
  } catch (error) {
    process.send({ type: 'error', message: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
