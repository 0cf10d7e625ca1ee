// The load client of bench/handshake.mjs, forked so it never shares the servers' event loop.
// On {type: 'run'} it keeps `concurrency` TLS connections in flight for `durationMs`: connect,
// wait until the server has completed the handshake (it sends one byte), destroy, connect again. Every handshake is a full one:
// no `session` is passed and the shared client context keeps no session cache, and a resumed
// session (which would be a bug here) is counted separately. The served certificate is checked
// on the first handshake and on a sample after it, so the route under test (SNI certificate or
// default certificate) is really the one measured.

import tls from 'node:tls';
import { normalizeFingerprint } from './lib/harness.mjs';

// One client context for every connection: building a context per connection would cost the
// client ~1 ms of CPU per handshake. The peer is not verified (chain building would only add
// client work that is the same for both servers); the fingerprint check below proves which
// certificate was served.
const context = tls.createSecureContext({});
const SAMPLE_EVERY = 64;

function run({ port, servername, durationMs, concurrency, expectFingerprint }) {
  return new Promise((resolve) => {
    const stats = { handshakes: 0, errors: 0, reused: 0, wrongCert: 0, firstError: null, protocol: null };
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    const deadline = started + durationMs;
    let inFlight = 0;
    let ended = null;
    let sample = 0;

    const finish = () => {
      if (inFlight > 0) return;
      const cpu = process.cpuUsage(cpuStart);
      resolve({ type: 'result', ...stats, elapsedMs: ended - started, cpuUs: cpu.user + cpu.system });
    };
    const next = () => {
      if (performance.now() >= deadline) {
        ended ??= performance.now();
        finish();
        return;
      }
      inFlight++;
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        secureContext: context,
        rejectUnauthorized: false,
      });
      let done = false;
      const settle = () => {
        if (done) return false;
        done = true;
        inFlight--;
        return true;
      };
      socket.once('secureConnect', () => {
        if (socket.isSessionReused()) stats.reused++;
        if (sample++ % SAMPLE_EVERY === 0) {
          stats.protocol ??= socket.getProtocol();
          const served = normalizeFingerprint(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
          if (served !== expectFingerprint) stats.wrongCert++;
        }
      });
      // The server writes one byte once its side of the handshake is complete: only then does
      // the handshake count (under TLS 1.3 the client finishes first).
      socket.once('data', () => {
        if (!settle()) return;
        // Counted only when completed inside the window.
        if (performance.now() < deadline) stats.handshakes++;
        socket.destroy();
        next();
      });
      socket.once('end', () => {
        if (!settle()) return;
        stats.errors++;
        stats.firstError ??= 'closed before the server completed the handshake';
        next();
      });
      socket.once('error', (error) => {
        if (!settle()) return;
        stats.errors++;
        stats.firstError ??= error.message;
        socket.destroy();
        next();
      });
    };
    for (let i = 0; i < concurrency; i++) next();
  });
}

process.on('message', (message) => {
  if (message?.type !== 'run') return;
  run(message).then(
    (result) => process.send(result),
    (error) => process.send({ type: 'error', message: String(error?.stack ?? error) }),
  );
});
process.on('disconnect', () => process.exit(0));
