/**
 * What every part of the `Store` conformance suite shares: the store under test, the second
 * client, vitest's `expect`, and helpers for values and waiting. Internal to `certkeeper/testing`.
 */
import type { ExpectStatic, TestContext } from 'vitest';
import type { Store } from '../../store/store.js';

/** A store for `runStoreConformance`, and how to reach its backend again. */
export interface StoreUnderTest {
  /** A fresh, empty store. The suite closes it after the test. */
  store: Store;
  /** Opens another client of the same backend, as another replica would. Enables the two-client tests. */
  second?: () => Store | Promise<Store>;
  /**
   * Cuts `store`'s change-notification connection the way a network failure or a server restart
   * would (it must come back by itself). Enables the test that listeners are told to resync.
   */
  interruptWatch?: () => void | Promise<void>;
  /** Runs after the test, once the stores are closed (drop the directory, database, key prefix). */
  cleanup?: () => void | Promise<void>;
}

export interface Kit {
  readonly expect: ExpectStatic;
  /** Registers a test with the suite's timeout. */
  test(title: string, body: (context: TestContext) => Promise<void>): void;
  /** The store under test of the running test. */
  sut(): StoreUnderTest;
  /** Another client of the same backend (closed after the test); skips the test without `second`. */
  second(context: TestContext): Promise<Store>;
  /** Another client if the factory has `second`, else the store under test itself. */
  other(context: TestContext): Promise<Store>;
  rejectsWith(run: () => Promise<unknown>, code: string): Promise<void>;
  /** Polls `check` until it holds; fails the test when it still does not at the suite's timeout. */
  until(check: () => boolean | Promise<boolean>, what: string): Promise<void>;
  /** Lease used by the takeover and renewal tests. */
  readonly short: number;
  /** Slack for timers and I/O around a lease boundary. */
  readonly slack: number;
  readonly timeout: number;
}

/** A lease nobody takes over during a test. */
export const LONG = 10_000;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));

export function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  if (a === null || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
