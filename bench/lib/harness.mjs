// Helpers shared by the benchmarks: the forked load client (request/reply over IPC), statistics,
// environment knobs, and cleanup that runs however the benchmark ends.

import { execFileSync, fork } from 'node:child_process';

/** A positive number from the environment, or the default. */
export function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an already sorted array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Fingerprints as the manager reports them: lowercase hex, no colons. */
export function normalizeFingerprint(fp) {
  return String(fp).replaceAll(':', '').toLowerCase();
}

/**
 * Forks `script` as the load client. `request(message)` sends one command and resolves with the
 * client's reply (one command at a time); the promise rejects if the client dies first.
 */
export function forkClient(script) {
  const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let pending = null;
  let exited = null;
  child.on('message', (message) => {
    const p = pending;
    pending = null;
    if (!p) return;
    if (message?.type === 'error') p.reject(new Error(`load client: ${message.message}`));
    else p.resolve(message);
  });
  child.on('exit', (code, signal) => {
    exited = new Error(`load client exited (code ${code}, signal ${signal})`);
    pending?.reject(exited);
    pending = null;
  });
  return {
    pid: child.pid,
    send(message) {
      if (!exited) child.send(message);
    },
    request(message) {
      if (exited) return Promise.reject(exited);
      if (pending) return Promise.reject(new Error('load client is busy'));
      return new Promise((resolve, reject) => {
        pending = { resolve, reject };
        child.send(message);
      });
    },
    kill() {
      if (!exited && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

/**
 * Runs `main`, then every registered cleanup (in reverse order), also on SIGINT/SIGTERM.
 * Exits 1 on an unexpected error; a missed goal is not an error.
 */
export async function runBenchmark(main) {
  const cleanups = [];
  const cleanup = async () => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()();
      } catch (error) {
        console.error('cleanup failed:', error);
      }
    }
  };
  const onSignal = (signal) => {
    console.error(`interrupted (${signal})`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // If the process ends some other way (an unsettled await with nothing left to run), the
  // synchronous part of each cleanup (killing the client, removing temp dirs) still runs.
  process.once('exit', () => {
    while (cleanups.length > 0) {
      try {
        cleanups
          .pop()()
          ?.catch?.(() => {});
      } catch {}
    }
  });
  let failed = false;
  try {
    await main((fn) => cleanups.push(fn));
  } catch (error) {
    failed = true;
    console.error(error);
  }
  await cleanup();
  // Lingering handles (keep-alive sockets, the manager's unref'd timers) must not hold the exit.
  process.exit(failed ? 1 : 0);
}

/**
 * Waits until the manager serves every certificate. A failed first issuance rejects with its
 * error instead of leaving the benchmark waiting on a retry timer that keeps nothing alive.
 */
export async function readyOrFail(manager, timeoutMs = 60_000) {
  let onFailure;
  let timer;
  const failed = new Promise((_, reject) => {
    onFailure = (e) => reject(new Error(`obtaining ${e.id} failed: ${e.error.code}: ${e.error.message}`));
    manager.on('renewalFailed', onFailure);
    timer = setTimeout(() => reject(new Error(`no certificate after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([manager.ready(), failed]);
  } finally {
    manager.off('renewalFailed', onFailure);
    clearTimeout(timer);
  }
}

/**
 * Imports the built package. Other processes on this machine may be rebuilding it at the same
 * moment (tsup empties dist/ first), so a missing dist/ is waited for, briefly, instead of
 * failing the run. Once imported, the modules stay in memory whatever happens to dist/ later.
 */
export async function importCertkeeper(timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (let warned = false; ; ) {
    try {
      return await import('certkeeper');
    } catch (error) {
      if (error?.code !== 'ERR_MODULE_NOT_FOUND' || Date.now() > deadline) throw error;
      if (!warned) console.log('dist/ is missing (being rebuilt by another process?); waiting');
      warned = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** CPUs this process may run on, from `taskset -pc` ("…affinity list: 0-3,6"); null if unknown. */
function allowedCpus() {
  let out;
  try {
    out = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' });
  } catch {
    return null;
  }
  const list = out.split(':').pop().trim();
  const cpus = [];
  for (const part of list.split(',')) {
    const [from, to = from] = part.split('-').map(Number);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  return cpus.every(Number.isInteger) ? cpus : null;
}

/**
 * Gives the server (this process) and the load client a CPU each, every thread included, so
 * that neither can take the other's: the nearest a single machine comes to a client and a server
 * on two machines. Threads started later inherit the pinning. Returns a line saying what was
 * done; with BENCH_PIN=0, fewer than two CPUs or no `taskset`, nothing is pinned and it says so.
 */
export function pinClientAndServer(clientPid) {
  if (process.env.BENCH_PIN === '0') return 'not pinned (BENCH_PIN=0): client and server share every CPU';
  const cpus = allowedCpus();
  if (!cpus || cpus.length < 2)
    return 'not pinned (taskset missing or fewer than 2 CPUs): client and server share CPUs';
  execFileSync('taskset', ['-a', '-pc', String(cpus[0]), String(clientPid)], { stdio: 'ignore' });
  execFileSync('taskset', ['-a', '-pc', String(cpus[1]), String(process.pid)], { stdio: 'ignore' });
  return `pinned: load client on CPU ${cpus[0]}, server (all its threads) on CPU ${cpus[1]}`;
}
