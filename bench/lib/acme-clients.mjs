// The ACME clients certkeeper is compared with, run as a user would: one process per
// certificate, HTTP-01 on Pebble's port (each binds it itself), trusting Pebble's HTTPS through
// its CA file. Each run reports its time and whether it got a certificate; a failure is counted,
// not fatal (certbot 2.1 gives up on a `badNonce`, which Pebble sends to 5 % of requests by default).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(command, args, env, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, ok: false, why: error.message });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (code === 0) return resolve({ ms, ok: true });
      const why = /badNonce/i.test(output) ? 'badNonce' : signal ? `killed (${signal})` : lastLine(output);
      resolve({ ms, ok: false, why });
    });
  });
}

function lastLine(text) {
  return (
    text
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .pop()
      ?.slice(0, 200) ?? 'failed'
  );
}

/** A client with a working directory of its own (account, certificates) for the whole run. */
export function lego(pebble, httpPort) {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-lego-'));
  return {
    name: 'lego',
    issue: (domain) =>
      run(
        'lego',
        [
          '--server',
          pebble.directoryUrl,
          '--email',
          'bench@bench.test',
          '--accept-tos',
          '--domains',
          domain,
          '--http',
          '--http.port',
          `127.0.0.1:${httpPort}`,
          '--path',
          dir,
          'run',
        ],
        { LEGO_CA_CERTIFICATES: pebble.caFile },
        120_000,
      ),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function certbot(pebble, httpPort) {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-certbot-'));
  return {
    name: 'certbot',
    issue: (domain) =>
      run(
        'certbot',
        [
          'certonly',
          '--non-interactive',
          '--agree-tos',
          '-m',
          'bench@bench.test',
          '--server',
          pebble.directoryUrl,
          '--standalone',
          '--preferred-challenges',
          'http',
          '--http-01-address',
          '127.0.0.1',
          '--http-01-port',
          String(httpPort),
          '-d',
          domain,
          '--config-dir',
          join(dir, 'config'),
          '--work-dir',
          join(dir, 'work'),
          '--logs-dir',
          join(dir, 'logs'),
        ],
        { REQUESTS_CA_BUNDLE: pebble.caFile },
        120_000,
      ),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
