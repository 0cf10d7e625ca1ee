// A separate process contending for a FileStore lock, driven by test/store/file-lock.process.test.ts.
// Uses the built package, as another replica would.
//   node lock-worker.mjs contend <directory> <log> <rounds>   acquire/release <rounds> times, logging
//   node lock-worker.mjs hold <directory> <ttlMs>              acquire, report, then hang until killed
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileStore } from '../../dist/index.js';

const [mode, directory, ...rest] = process.argv.slice(2);
const store = new FileStore({ directory });
const LOCK = 'shared/lock';

if (mode === 'contend') {
  const [log, rounds] = rest;
  for (let i = 0; i < Number(rounds); i++) {
    const lease = await store.lock(LOCK, { ttlMs: 10_000, signal: AbortSignal.timeout(20_000) });
    appendFileSync(log, `enter ${process.pid} ${lease.token}\n`);
    await sleep(1 + Math.random() * 4);
    appendFileSync(log, `leave ${process.pid} ${lease.token}\n`);
    if (!(await store.unlock(lease))) throw new Error(`unlock of token ${lease.token} returned false`);
    await sleep(10 + Math.random() * 20); // give the other process a chance to get in
  }
  await store.close();
} else if (mode === 'hold') {
  const lease = await store.lock(LOCK, { ttlMs: Number(rest[0]), signal: AbortSignal.timeout(10_000) });
  process.stdout.write(`${JSON.stringify({ token: lease.token, expiresAt: lease.expiresAt })}\n`);
  setInterval(() => {}, 60_000); // hold until SIGKILL
} else {
  throw new Error(`unknown mode ${mode}`);
}
