/**
 * Publishes a manager's public events on certkeeper's diagnostics channels (./channels.ts) until
 * the manager publishes them at the source. One bridge per manager, however often it is asked.
 *
 * A renewal attempt is traced from `obtaining` (start, then end: the attempt runs asynchronously)
 * to its outcome: `obtained`/`renewed`/`adopted` (asyncStart, asyncEnd) or `renewalFailed`
 * (error, asyncStart, asyncEnd), as `TracingChannel.tracePromise` would publish it.
 */
import type { Clock } from '../clock.js';
import type { ManagerEvents } from '../manager/events.js';
import type { CertificateManager } from '../manager/manager.js';
import {
  type DeployMessage,
  deployChannel,
  type LiveCheckMessage,
  liveCheckChannel,
  type RenewalContext,
  renewalChannel,
} from './channels.js';

type BridgedManager = Pick<CertificateManager, 'on' | 'off'>;
type BridgedEvent =
  | 'obtaining'
  | 'obtained'
  | 'renewed'
  | 'adopted'
  | 'renewalFailed'
  | 'swapped'
  | 'rolledBack'
  | 'liveVerifyFailed';

const bridged = new WeakMap<object, () => void>();

function tracing(): boolean {
  const c = renewalChannel;
  return (
    c.start.hasSubscribers ||
    c.end.hasSubscribers ||
    c.asyncStart.hasSubscribers ||
    c.asyncEnd.hasSubscribers ||
    c.error.hasSubscribers
  );
}

/**
 * Starts publishing `manager`'s events on the diagnostics channels; returns the function that
 * stops it. `clock` times the attempts (default: the system clock; pass the manager's).
 */
export function publishDiagnostics(
  manager: BridgedManager,
  options: { clock?: Pick<Clock, 'now'> } = {},
): () => void {
  const existing = bridged.get(manager);
  if (existing) return existing;
  const now = () => (options.clock ?? Date).now();
  const pending = new Map<string, { context: RenewalContext; started: number }>();

  const finish = (id: string, update: Partial<RenewalContext>, failed: boolean) => {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    Object.assign(entry.context, update, { durationMs: update.durationMs ?? now() - entry.started });
    if (failed) renewalChannel.error.publish(entry.context);
    renewalChannel.asyncStart.publish(entry.context);
    renewalChannel.asyncEnd.publish(entry.context);
  };

  const handlers: { [K in BridgedEvent]: (payload: ManagerEvents[K][0]) => void } = {
    obtaining: ({ id, names, reason, attempt }) => {
      if (!tracing()) return;
      const context: RenewalContext = { manager, id, names, reason, attempt };
      pending.set(id, { context, started: now() });
      renewalChannel.start.publish(context);
      renewalChannel.end.publish(context);
    },
    obtained: ({ id, serial, issuer, notAfter, durationMs }) =>
      finish(id, { result: 'obtained', serial, issuer, notAfter, durationMs }, false),
    renewed: ({ id, serial, issuer, notAfter, durationMs }) =>
      finish(id, { result: 'renewed', serial, issuer, notAfter, durationMs }, false),
    adopted: ({ id, serial, notAfter }) => finish(id, { result: 'adopted', serial, notAfter }, false),
    renewalFailed: ({ id, error, retryAt }) => finish(id, { error, retryAt }, true),
    swapped: ({ id, serial, previousSerial, servers, verified, durationMs }) => {
      if (deployChannel.hasSubscribers) {
        const message: DeployMessage = {
          manager,
          id,
          outcome: 'swapped',
          serial,
          servingSerial: serial,
          previousSerial,
          servers,
          verified,
          durationMs,
        };
        deployChannel.publish(message);
      }
      if (liveCheckChannel.hasSubscribers && verified > 0) {
        const message: LiveCheckMessage = { manager, id, ok: true, serial, servers, verified };
        liveCheckChannel.publish(message);
      }
    },
    rolledBack: ({ id, reason, rejectedSerial, servingSerial }) => {
      if (!deployChannel.hasSubscribers) return;
      const message: DeployMessage = {
        manager,
        id,
        outcome: 'rolled-back',
        serial: rejectedSerial,
        servingSerial,
        previousSerial: servingSerial,
        error: reason,
      };
      deployChannel.publish(message);
    },
    liveVerifyFailed: ({ id, error, expected }) => {
      if (!liveCheckChannel.hasSubscribers) return;
      const message: LiveCheckMessage = { manager, id, ok: false, serial: null, expected, error };
      liveCheckChannel.publish(message);
    },
  };

  const entries = Object.entries(handlers) as [string, (payload: never) => void][];
  for (const [name, handler] of entries) manager.on(name as never, handler as never);
  const stop = () => {
    for (const [name, handler] of entries) manager.off(name as never, handler as never);
    pending.clear();
    bridged.delete(manager);
  };
  bridged.set(manager, stop);
  return stop;
}
