/**
 * What the operations tools (health, metrics, status page) learn from a manager's public events
 * beyond `status()`: which served certificate failed its live check, how each live check went,
 * and "something changed" for pages that refresh live. One observer per manager (a WeakMap), so
 * health, metrics and the page agree; it sees what happens after it is created, so create the
 * tools before `start()`.
 */
import type { CertificateManager, CertificateStatus } from '../manager/manager.js';

/** The part of the manager the operations tools use: its public API only. */
export type ObservedManager = Pick<CertificateManager, 'status' | 'on' | 'off'>;

export interface LiveCheck {
  /** Whether the live servers served the new certificate (false: it was rolled back, or nothing was served before). */
  ok: boolean;
  at: Date;
  serial: string | null;
  servers: number;
  verified: number;
  /** The failure's code when `ok` is false. */
  code: string | null;
}

export class ManagerObserver {
  readonly manager: ObservedManager;
  /** Fingerprint of the certificate of an id whose live check failed and that is still installed. */
  readonly #unverified = new Map<string, string>();
  readonly #checks = new Map<string, LiveCheck>();
  readonly #listeners = new Set<(event: string, id: string) => void>();

  constructor(manager: ObservedManager, now: () => number) {
    this.manager = manager;
    manager.on('liveVerifyFailed', ({ id, error, expected }) => {
      this.#unverified.set(id, expected);
      this.#checks.set(id, {
        ok: false,
        at: new Date(now()),
        serial: null,
        servers: 0,
        verified: 0,
        code: error.code,
      });
    });
    manager.on('swapped', ({ id, serial, servers, verified }) => {
      this.#unverified.delete(id);
      this.#checks.set(id, { ok: true, at: new Date(now()), serial, servers, verified, code: null });
    });
    const names = [
      'loaded',
      'obtaining',
      'obtained',
      'renewed',
      'adopted',
      'renewalFailed',
      'expiring',
      'swapped',
      'rolledBack',
      'revoked',
      'storedInvalid',
    ] as const;
    for (const name of names) {
      manager.on(name, (payload: { id: string }) => {
        for (const listener of this.#listeners) listener(name, payload.id);
      });
    }
  }

  /** Whether `status` describes a certificate whose live check failed (and that was kept anyway). */
  unverified(status: Pick<CertificateStatus, 'id' | 'fingerprint256'>): boolean {
    const fingerprint = this.#unverified.get(status.id);
    return fingerprint !== undefined && fingerprint === status.fingerprint256;
  }

  liveCheck(id: string): LiveCheck | undefined {
    return this.#checks.get(id);
  }

  /** Called after each event that may change what `status()` says; returns the unsubscribe. */
  onChange(listener: (event: string, id: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

const observers = new WeakMap<object, ManagerObserver>();

/** The one observer of `manager` (created on first use). */
export function observe(manager: ObservedManager, now: () => number = Date.now): ManagerObserver {
  let observer = observers.get(manager);
  if (!observer) {
    observer = new ManagerObserver(manager, now);
    observers.set(manager, observer);
  }
  return observer;
}
