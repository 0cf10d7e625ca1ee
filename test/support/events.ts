// Awaiting manager events with a bound, so a missing event fails the test with its name instead
// of hanging until the test timeout.
import type { ManagerEvents } from '../../src/manager/events.js';
import type { CertificateManager } from '../../src/manager/manager.js';

export function nextEvent<K extends keyof ManagerEvents>(
  manager: CertificateManager,
  name: K,
  timeoutMs = 15_000,
  filter: (payload: ManagerEvents[K][0]) => boolean = () => true,
): Promise<ManagerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      manager.off(name, listener as never);
      reject(new Error(`no "${String(name)}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: ManagerEvents[K][0]) => {
      if (!filter(payload)) return;
      clearTimeout(timer);
      manager.off(name, listener as never);
      resolve(payload);
    };
    manager.on(name, listener as never);
  });
}
