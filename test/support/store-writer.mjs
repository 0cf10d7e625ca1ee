// A separate process writing one value into a FileStore, driven by
// test/store/file-store-temp.process.test.ts. Uses the built package, as another replica would.
//   node store-writer.mjs <directory> <key> <value>
// The hook: the first fsync of a file (the temp file's, once the whole value is in it) prints
// "written <pid>" and never returns, so the test can kill -9 the process at exactly that moment.
import { open } from 'node:fs/promises';
import { FileStore } from '../../dist/index.js';

const [directory, key, value] = process.argv.slice(2);

const probe = await open('/dev/null', 'r');
const FileHandle = Object.getPrototypeOf(probe);
await probe.close();
FileHandle.sync = function hang() {
  process.stdout.write(`written ${process.pid}\n`);
  return new Promise(() => {}); // until SIGKILL
};
setInterval(() => {}, 60_000); // a pending promise alone does not keep the process alive

await new FileStore({ directory }).put(key, value);
process.stdout.write('renamed\n'); // never reached while the hook holds the write
