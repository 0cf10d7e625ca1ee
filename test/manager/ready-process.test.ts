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
