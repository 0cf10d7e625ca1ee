// The measured half of bench:scale, in a fresh process so resident memory is the manager's, not
// the set-up's: a manager over N stored certificates (FileStore or Redis), time until start()
// resolves (every certificate servable: pointers read, names indexed, renewals scheduled), RSS,
// SNI lookup cost, a real handshake to a certificate never touched before (lazy load), and one
// maintenance pass (reconcile: every pointer re-read). Prints one JSON line.
import tls from 'node:tls';
import { createCertificateManager, createTlsServer, FileStore, InternalCA, silentLogger } from 'certkeeper';
import { RedisStore } from 'certkeeper/stores';

const [kind, location, countText] = process.argv.slice(2);
const count = Number(countText);
const store =
  kind === 'file'
    ? new FileStore({ directory: location })
    : new RedisStore({ url: 'redis://127.0.0.1:6379', prefix: location, encryption: false });
const names = Array.from({ length: count }, (_, i) => `c${i}.scale.test`);
const manager = createCertificateManager({
  store,
  issuer: new InternalCA({ name: 'scale', lifetimeMs: 30 * 86_400_000 }),
  certificates: names.map((name) => ({ id: name, names: [name] })),
  logger: silentLogger,
  reconcileIntervalMs: 0,
});
let issued = 0;
manager.on('obtaining', () => issued++);

const started = performance.now();
await manager.start();
const startupMs = performance.now() - started;
const rss = process.memoryUsage().rss / 2 ** 20;

if (count === 0) {
  // The baseline: the same process with nothing managed.
  console.log(JSON.stringify({ kind, count, startupMs, rss }));
  process.exit(0);
}

// SNI lookup: the per-handshake cost of choosing a certificate by name.
const probes = Array.from({ length: 200_000 }, (_, i) => names[(i * 7919) % count]);
let hits = 0;
const lookupStart = performance.now();
for (let round = 0; round < 5; round++) for (const name of probes) if (manager.lookup(name)) hits++;
const lookupUs = ((performance.now() - lookupStart) * 1000) / (probes.length * 5);

// A real handshake to certificates that were never loaded: the lazy path end to end.
const server = createTlsServer(manager, {}, (socket) => socket.end());
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const handshakeTimes = [];
for (const name of [names[count - 1], names[count >> 1], names[7]]) {
  const t0 = performance.now();
  const serial = await new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: name, rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate().subject.CN);
        socket.destroy();
      },
    );
    socket.on('error', reject);
  });
  if (serial !== name) throw new Error(`served ${serial} for ${name}`);
  handshakeTimes.push(performance.now() - t0);
}
server.close();

const pass = performance.now();
await manager.reconcile();
const maintenanceMs = performance.now() - pass;
const rssAfter = process.memoryUsage().rss / 2 ** 20;
await manager.stop();
await store.close();
console.log(
  JSON.stringify({
    kind,
    count,
    startupMs,
    rss,
    rssAfter,
    lookupUs,
    hits,
    handshakeTimes,
    maintenanceMs,
    issued,
  }),
);
