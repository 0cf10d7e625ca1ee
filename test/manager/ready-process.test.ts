// `await manager.ready()` as the only thing a script does: the renewal timers are unref'd, so
// the wait itself must keep the process alive until the first certificate is obtained. Here the
// issuer answers only after an unref'd timer (as a network CA answers on a socket that may be
// idle), which left nothing else to keep the event loop running: Node exited with code 13
// ("unsettled top-level await") before the fix. Runs the built package in a child process.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const SCRIPT = `
import { createCertificateManager, InternalCA, MemoryStore, silentLogger } from 'certkeeper';
const ca = new InternalCA({ name: 'ready' });
const slow = {
  id: ca.id,
  supportsPurpose: (p) => ca.supportsPurpose(p),
  trustAnchors: (c) => ca.trustAnchors(c),
  async issue(request, context) {
    await new Promise((resolve) => setTimeout(resolve, 50).unref());
    return ca.issue(request, context);
  },
};
const manager = createCertificateManager({
  store: new MemoryStore(),
  issuer: slow,
  certificates: [{ id: 'a', names: ['a.test'] }],
  logger: silentLogger,
  reconcileIntervalMs: 0,
});
await manager.start();
await manager.ready();
console.log('ready', manager.certificate('a') !== null);
await manager.stop();
`;

it('a script awaiting ready() runs until the certificate is there (no exit 13)', () => {
  // Inside the package directory, so that 'certkeeper' resolves to this package (self-reference).
  const file = join(process.cwd(), `.ready-${process.pid}.tmp.mjs`);
  writeFileSync(file, SCRIPT);
  try {
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('ready true');
  } finally {
    rmSync(file, { force: true });
  }
});

// A renewal daemon: a manager with no server attached. Its timers are unref'd, so before the
// `keepAlive` option nothing held the process once ready() resolved: Node ran out of work and
// exited, and renewal silently stopped. `beforeExit` fires exactly when the event loop is empty;
// while the manager runs with keepAlive it must never fire. The unref'd timer below can only fire
// if something else keeps the process alive; it then stops the manager, which must let the
// process end by itself.
const DAEMON = (options: string, attach: boolean) => `
import https from 'node:https';
import { createCertificateManager, InternalCA, MemoryStore, silentLogger } from 'certkeeper';
const manager = createCertificateManager({
  store: new MemoryStore(),
  issuer: new InternalCA({ name: 'daemon' }),
  certificates: [{ id: 'a', names: ['a.test'] }],
  logger: silentLogger,
  reconcileIntervalMs: 0,
  ${options}
});
${attach ? 'manager.attach(https.createServer());' : ''}
let stopped = false;
process.on('beforeExit', () => {
  if (!stopped) console.log('idle while running');
});
await manager.start();
await manager.ready();
console.log('ready');
setTimeout(async () => {
  console.log('still running');
  await manager.stop();
  stopped = true;
}, 300).unref();
`;

function runScript(script: string): string {
  const file = join(process.cwd(), `.daemon-${process.pid}-${Math.random().toString(36).slice(2)}.tmp.mjs`);
  writeFileSync(file, script);
  try {
    return execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 }).trim();
  } finally {
    rmSync(file, { force: true });
  }
}

it('keepAlive (default with nothing attached): a renewal daemon keeps running after ready(), and ends after stop()', () => {
  expect(runScript(DAEMON('', false))).toBe('ready\nstill running');
});

it('keepAlive: false lets the process end once the event loop is empty, as before', () => {
  expect(runScript(DAEMON('keepAlive: false,', false))).toBe('ready\nidle while running');
});

it('keepAlive default with a server attached: the server, not the manager, keeps the process alive', () => {
  expect(runScript(DAEMON('', true))).toBe('ready\nidle while running');
});

it('keepAlive: true holds the process even with a server attached', () => {
  expect(runScript(DAEMON('keepAlive: true,', true))).toBe('ready\nstill running');
});
