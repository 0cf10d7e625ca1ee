// A separate process holding a FileStore lock and committing under it, driven by
// test/store/file-store-fence.process.test.ts. Uses the built package, as another replica would.
//   node fenced-writer.mjs <directory> <lock> <key> <ttlMs>
// It takes the lock and commits "in time" fenced by its lease; then, for its second fenced put,
// the hook on the temp file's fsync (the whole value written, the rename still to come) prints
// "paused" and holds the write until a line arrives on stdin: a holder stalled past its lease.
// It prints "result ok" or "result <error code>" for that second put.

import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { FileStore } from '../../dist/index.js';

const [directory, lock, key, ttlMs] = process.argv.slice(2);
const store = new FileStore({ directory });
const lease = await store.lock(lock, { ttlMs: Number(ttlMs), signal: AbortSignal.timeout(10_000) });
await store.put(key, 'in time', { fence: lease });

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const probe = await open('/dev/null', 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
const sync = FileHandle.sync;
FileHandle.sync = async function paused() {
  FileHandle.sync = sync;
  process.stdout.write(`paused ${process.pid}\n`);
  await lines.next();
  return sync.call(this);
};

const outcome = await store.put(key, 'stale', { fence: lease }).then(
  () => 'ok',
  (error) => error.code ?? String(error),
);
process.stdout.write(`result ${outcome}\n`);
await store.close();
process.exit(0);
