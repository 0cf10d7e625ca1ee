// An entry this process may not read is not a damaged one (issue 13 item 10): after
// `chmod 000 current.json` (or key.pem) a restarted manager serves nothing new from it, orders
// nothing, says it is unreadable (STORE_UNREADABLE, no storedInvalid) and reads again; once the
// permissions are back, it serves the stored certificate. The manager runs in its own process,
// as an unprivileged user when the tests run as root (root reads any file whatever its mode).
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { layout } from '../../src/store/layout.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
/** Root ignores file modes: the manager then runs as nobody. */
const asUser = process.getuid?.() === 0 ? 65534 : undefined;

type Message =
  | { type: 'event'; name: string; payload: { serial?: string; error?: { code: string } } }
  | { type: 'status'; status: { serial: string | null; lastError: { code: string } | null }; calls: number };

let program: string;
const children = new Set<ChildProcess>();
const dirs: string[] = [];

beforeAll(async () => {
  const { build } = await import('esbuild');
  const dir = join(root, 'node_modules/.cache/certkeeper-unreadable');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  program = join(dir, `manager-${process.pid}-${randomUUID().slice(0, 8)}.mjs`);
  await build({
    entryPoints: [join(here, '../support/unprivileged-manager.ts')],
    outfile: program,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
  });
  chmodSync(program, 0o644);
});
afterAll(() => {
  if (program) rmSync(program, { force: true });
});
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A manager process running as nobody on `store`, with its messages. */
function start(store: string) {
  const child = fork(program, [], {
    env: { ...process.env, CERTKEEPER_TEST_STORE: store },
    ...(asUser === undefined ? {} : { uid: asUser, gid: asUser }),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  children.add(child);
  let output = '';
  child.stderr!.on('data', (chunk) => {
    output += chunk;
  });
  const messages: Message[] = [];
  const waiters = new Set<() => void>();
  child.on('message', (m: Message) => {
    messages.push(m);
    for (const wake of [...waiters]) wake();
  });
  const waitFor = <T extends Message>(match: (m: Message) => m is T, what: string, ms = 15_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = messages.find(match);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms\n${output}\n${JSON.stringify(messages)}`));
      }, ms);
      waiters.add(check);
      check();
    });
  const event = (name: string, code?: string) =>
    waitFor(
      (m): m is Extract<Message, { type: 'event' }> =>
        m.type === 'event' && m.name === name && (code === undefined || m.payload.error?.code === code),
      `"${name}"${code ? ` (${code})` : ''} event`,
    );
  const status = async () => {
    const before = messages.length;
    child.send('status');
    return waitFor(
      (m): m is Extract<Message, { type: 'status' }> => m.type === 'status' && messages.indexOf(m) >= before,
      'status',
    );
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.send('stop');
    });
  const events = (name: string) =>
    messages.filter((m): m is Extract<Message, { type: 'event' }> => m.type === 'event' && m.name === name);
  return { event, status, stop, events };
}

/** A store directory the unprivileged manager owns, holding one certificate; its serial. */
async function seeded() {
  const store = mkdtempSync(join(tmpdir(), 'ck-unreadable-'));
  dirs.push(store);
  if (asUser !== undefined) chownSync(store, asUser, asUser);
  const first = start(store);
  const obtained = await first.event('obtained');
  await first.stop();
  return { store, serial: obtained.payload.serial! };
}

function chmodTree(path: string, mode: number) {
  chmodSync(path, mode);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chmodTree(join(path, entry), mode);
}

describe('an unreadable stored certificate', () => {
  it.each([
    ['current.json', () => layout.certificate('test-ca', 'web').current],
    ['its key.pem', (serial: string) => layout.certificate('test-ca', 'web').generation(serial).key],
  ])('%s at mode 000: nothing ordered, nothing called damaged; served once readable', async (_, key) => {
    const { store, serial } = await seeded();
    const path = join(store, key(serial));
    chmodSync(path, 0o000);

    const second = start(store);
    // Said, with its own code: an attempt that orders nothing, or a load that waits.
    if (key(serial).endsWith('current.json')) {
      await second.event('renewalFailed', 'STORE_UNREADABLE');
    } else {
      expect((await second.event('loaded')).payload.serial).toBe(serial);
    }
    const during = await second.status();
    expect(during.calls).toBe(0);
    expect(second.events('storedInvalid')).toEqual([]);
    expect(second.events('obtained')).toEqual([]);

    chmodTree(path, 0o600);
    const deadline = Date.now() + 15_000;
    let now = await second.status();
    while (now.status.serial !== serial && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      now = await second.status();
    }
    expect(now.status.serial).toBe(serial);
    // Served from the store: never ordered, never reported damaged.
    expect(now.calls).toBe(0);
    expect(second.events('storedInvalid')).toEqual([]);
    await second.stop();
  });
});
