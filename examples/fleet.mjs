// One replica of a fleet. Start it twice (or more) with the same store and encryption key: the
// replicas share one embedded CA and one certificate through Redis or PostgreSQL, so one of them
// issues it and the others adopt it, and all serve it. `kill -HUP <pid>` renews on that replica;
// the others pick the new certificate up from the store and swap it in.
//
// Needs ioredis or pg (npm install ioredis / pg). Environment: STORE (redis://… or postgres://…,
// required), CERTKEEPER_ENCRYPTION_KEY (required,
// the same on every replica: `openssl rand -base64 32`), STORE_PREFIX (Redis key prefix or
// PostgreSQL table, default certkeeper), NAME (this replica, for its log lines), PORT (default
// 8443; 0 picks a free one), HOST (default 127.0.0.1).
import { createCertificateManager, createHttpsServer } from 'certkeeper';
import { PostgresStore, RedisStore } from 'certkeeper/stores';

const env = process.env;
const url = env.STORE ?? '';
const prefix = env.STORE_PREFIX ?? 'certkeeper';
const me = env.NAME ?? `replica-${process.pid}`;
// Private keys and the CA's state are sealed with CERTKEEPER_ENCRYPTION_KEY (read once, then
// removed from the environment); without a key, shared stores refuse to start.
const store = url.startsWith('postgres')
  ? new PostgresStore({ connectionString: url, table: prefix })
  : url.startsWith('redis')
    ? new RedisStore({ url, prefix })
    : null;
if (!store) throw new Error('set STORE to a redis:// or postgres:// URL');

const manager = createCertificateManager({
  store,
  certificates: [{ id: 'web', names: ['localhost', '127.0.0.1'] }],
});
manager.on('obtained', (e) => console.log(`${me}: issued serial ${e.serial}`));
manager.on('adopted', (e) => console.log(`${me}: adopted serial ${e.serial} from another replica`));
manager.on('swapped', (e) => console.log(`${me}: serving serial ${e.serial}`));
process.on('SIGHUP', () =>
  manager.renewNow('web').catch((error) => console.log(`${me}: renewal failed: ${error.code}`)),
);
await manager.start();
await manager.ready();

const server = createHttpsServer(manager, {}, (_req, res) => res.end(`hello from ${me}\n`));
server.listen(Number(env.PORT ?? 8443), env.HOST ?? '127.0.0.1', () =>
  console.log(`${me}: listening on https://localhost:${server.address().port}/`),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    server.closeAllConnections();
    await manager.stop();
    await store.close(); // ours: we created it
  });
}
