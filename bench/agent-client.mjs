// The new-connection half of bench/agent.mjs's load: HTTPS requests, each on a connection of its
// own (a full handshake every time), CONCURRENCY at once, until the parent says stop; then it
// reports how many succeeded and failed (a failure: network or TLS error, or a status not 200).
import https from 'node:https';

const CONCURRENCY = 4;
let stop = false;
let ok = 0;
let failed = 0;
const reasons = new Map();

function once(port) {
  return new Promise((resolve) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        rejectUnauthorized: false,
        servername: 'localhost',
      },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200 ? null : `status ${res.statusCode}`));
        res.once('error', (e) => resolve(e.code ?? e.message));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.once('error', (e) => resolve(e.code ?? e.message));
  });
}

async function loop(port) {
  while (!stop) {
    const error = await once(port);
    if (error === null) ok++;
    else {
      failed++;
      reasons.set(error, (reasons.get(error) ?? 0) + 1);
    }
  }
}

process.on('message', async (message) => {
  if (message.type === 'start') {
    stop = false;
    ok = 0;
    failed = 0;
    reasons.clear();
    globalThis.running = Promise.all(Array.from({ length: CONCURRENCY }, () => loop(message.port)));
    process.send({ type: 'started' });
  } else if (message.type === 'stop') {
    stop = true;
    await globalThis.running;
    process.send({ type: 'result', ok, failed, reasons: Object.fromEntries(reasons) });
  } else if (message.type === 'exit') {
    process.exit(0);
  }
});
