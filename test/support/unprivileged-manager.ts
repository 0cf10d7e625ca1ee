// A certificate manager on a FileStore, run as its own process (test/manager/unreadable.test.ts
// forks it as an unprivileged user, so file permissions apply to it: the tests run as root).
// Bundled from the current src/ with esbuild first. It talks over IPC:
//   out  { type: 'event', name, payload }   every manager event (errors as code + message)
//        { type: 'status', status, calls }  the answer to 'status' (calls: issuer calls so far)
//   in   'status' | 'stop'
import { createCertificateManager } from '../../src/manager/manager.js';
import { FileStore } from '../../src/store/file-store.js';
import { SwitchableIssuer } from './issuers.js';

const directory = process.env.CERTKEEPER_TEST_STORE ?? '';
const issuer = new SwitchableIssuer({ id: 'test-ca', lifetimeMs: 3_600_000 });
const manager = createCertificateManager({
  store: new FileStore({ directory }),
  issuer,
  certificates: [{ id: 'web', names: ['localhost'] }],
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  reconcileIntervalMs: 0,
  renewal: { retryMinMs: 1_000 },
});

const send = (message: unknown) => {
  if (process.connected) process.send?.(message);
};
const events = [
  'loaded',
  'storedInvalid',
  'obtaining',
  'obtained',
  'renewed',
  'adopted',
  'renewalFailed',
  'swapped',
] as const;
for (const name of events) {
  manager.on(name, (payload: object) => {
    const plain = Object.fromEntries(
      Object.entries(payload).map(([k, v]) => [
        k,
        v instanceof Error ? { code: (v as { code?: string }).code, message: v.message } : v,
      ]),
    );
    send({ type: 'event', name, payload: plain });
  });
}

process.on('message', async (message) => {
  if (message === 'status') send({ type: 'status', status: manager.status()[0], calls: issuer.calls });
  if (message === 'stop') {
    await manager.stop();
    process.disconnect();
  }
});
process.on('disconnect', () => void manager.stop().then(() => process.exit(0)));
void manager.start();
