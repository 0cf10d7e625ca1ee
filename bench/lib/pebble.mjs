// Starts Pebble + pebble-challtestsrv on free loopback ports for benchmarks (the test suite has
// its own, richer harness in test/support/pebble.ts; benchmarks run as plain Node scripts).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** Starts Pebble and challtestsrv; `stop()` kills both (also at exit). */
export async function startPebble({ httpPort, tlsPort, env = {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-bench-pebble-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-subj',
      '/CN=bench pebble CA',
      '-days',
      '2',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'srv.key',
      '-out',
      'srv.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'srv.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'srv.pem',
      '-days',
      '2',
      '-extfile',
      'ext',
    ],
    dir,
  );
  const [acme, mgmt, dns, chall] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acme}`,
      managementListenAddress: `127.0.0.1:${mgmt}`,
      certificate: join(dir, 'srv.pem'),
      privateKey: join(dir, 'srv.key'),
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const challtestsrv = spawn(
    'pebble-challtestsrv',
    [
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv6',
      '',
      '-dns01',
      `127.0.0.1:${dns}`,
      '-management',
      `127.0.0.1:${chall}`,
    ],
    { stdio: 'ignore' },
  );
  // `env` entries set to undefined are removed: `{ PEBBLE_VA_NOSLEEP: undefined }` brings back the
  // VA's random sleeps (0-4 s before each of its three validations).
  const pebbleEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1', ...env };
  for (const [name, value] of Object.entries(pebbleEnv)) if (value === undefined) delete pebbleEnv[name];
  const pebble = spawn('pebble', ['-config', join(dir, 'config.json'), '-dnsserver', `127.0.0.1:${dns}`], {
    env: pebbleEnv,
    stdio: 'ignore',
  });
  const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  const directoryUrl = `https://127.0.0.1:${acme}/dir`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      https
        .get(directoryUrl, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error('Pebble did not start within 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    pebble.kill('SIGKILL');
    challtestsrv.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return { directoryUrl, ca, caFile: join(dir, 'ca.pem'), stop };
}
