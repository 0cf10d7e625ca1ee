// A process that rotates the embedded CA's intermediate and is killed (SIGKILL, by the test in
// internal-ca-crash.test.ts) at one exact moment: just before its k-th store write of the
// rotation. Bundled from src/ with esbuild, so it runs the code under test.
//   env CERTKEEPER_CRASH = { directory, killBefore, lockTtlMs }
//   out { type: 'ready', root }  the manager serves; the CA exists
//       { type: 'paused', key }  about to write `key`: kill me now
//       { type: 'done' }         the rotation made fewer writes than killBefore
import { InternalCA } from '../../src/issuers/internal-ca.js';
import { silentLogger } from '../../src/logger.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { FileStore } from '../../src/store/file-store.js';
import type { Store } from '../../src/store/store.js';

const config = JSON.parse(process.env.CERTKEEPER_CRASH ?? '') as {
  directory: string;
  killBefore: number;
  lockTtlMs: number;
};

const send = (message: object) => process.send?.(message);

/** The FileStore, with a hook before each write below `ca/` once armed. */
function hooked(inner: FileStore): Store & { armed: boolean } {
  let writes = 0;
  const store: Store & { armed: boolean } = {
    armed: false,
    get: (key) => inner.get(key),
    async put(key, value) {
      if (store.armed && key.startsWith('ca/') && ++writes === config.killBefore) {
        send({ type: 'paused', key });
        await new Promise(() => {}); // until SIGKILL
      }
      return inner.put(key, value);
    },
    delete: (key) => inner.delete(key),
    list: (prefix) => inner.list(prefix),
    stat: (key) => inner.stat(key),
    lock: (name, options) => inner.lock(name, options),
    tryLock: (name, options) => inner.tryLock(name, options),
    renewLock: (lease, ttlMs) => inner.renewLock(lease, ttlMs),
    unlock: (lease) => inner.unlock(lease),
    close: () => inner.close(),
  };
  return store;
}

const store = hooked(new FileStore({ directory: config.directory }));
const ca = new InternalCA();
const manager = createCertificateManager({
  store,
  issuer: ca,
  certificates: [{ id: 'web', names: ['localhost'] }],
  lockTtlMs: config.lockTtlMs,
  logger: silentLogger,
});
await manager.start();
await manager.ready();
send({ type: 'ready', root: await ca.rootCertificate() });
store.armed = true;
await ca.rotateIntermediate();
send({ type: 'done' });
await new Promise(() => {}); // until SIGKILL
