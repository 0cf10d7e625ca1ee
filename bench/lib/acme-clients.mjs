// The ACME clients certkeeper is compared with, run as a user would: one process per
// certificate, HTTP-01 on Pebble's port (each binds it itself), trusting Pebble's HTTPS through
// its CA file. Each run reports its time and whether it got a certificate; a failure is counted,
// not fatal (certbot 2.1 gives up on a `badNonce`, which Pebble sends to 5 % of requests by default).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
      resolve({ ms, ok: false, why: signal ? `killed (${signal})` : reason(output) });
    });
  });
}

/** Why a run failed, from its output (or log): a bad nonce by name, else its first error line. */
function reason(text) {
  if (/badNonce|anti-replay nonce/i.test(text)) return 'badNonce';
  const lines = text.split('\n').map((l) => l.trim());
  const error = lines.find((l) => /error/i.test(l) && !/Ask for help/.test(l)) ?? lines.filter(Boolean).pop();
  return error?.slice(0, 200) ?? 'failed';
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
  const log = () => {
    try {
      return readFileSync(join(dir, 'logs', 'letsencrypt.log'), 'utf8');
    } catch {
      return '';
    }
  };
  return {
    name: 'certbot',
    // certbot prints little; its log says why it gave up.
    issue: async (domain) => {
      const result = await run(
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
      );
      if (!result.ok && result.why !== 'badNonce' && /badNonce|anti-replay nonce/i.test(log().slice(-20_000)))
        result.why = 'badNonce';
      return result;
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
