/** Options of on-demand issuance, validated once at construction. */
import { optionError } from '../errors.js';
import type { DecideFunction } from './admission.js';
import { type OnDemandLimits, type ResolvedLimits, resolveLimits } from './limits.js';

const DAY = 86_400_000;

export interface OnDemandOptions {
  /** Whether a name may get a certificate (see `DecideFunction`). Required: no name is allowed by default. */
  decide: DecideFunction;
  limits?: OnDemandLimits;
  /** How long a handshake waits for a new certificate. Default 10 000 ms. */
  waitMs?: number;
  /** How long one order may take in the background (it outlives a handshake that gave up). Default 120 000 ms. */
  orderTimeoutMs?: number;
  /** On-demand certificates kept in memory (least recently served forgotten first). Default 1000. */
  maxInMemory?: number;
  /** A certificate not served for this long is removed from memory and the store. Default 30 days. */
  forgetAfterMs?: number;
  /** How often the removal pass runs; 0 turns the timer off (call `sweep()` yourself). Default 1 hour. */
  sweepIntervalMs?: number;
  /** Lease of the per-name order lock in the store (renewed while held). Default 30 000 ms. */
  lockTtlMs?: number;
  /** When no certificate can be had in time: serve the default certificate or end the handshake. Default `default`. */
  onFailure?: 'default' | 'refuse';
}

export interface ResolvedOnDemandOptions {
  decide: DecideFunction;
  limits: ResolvedLimits;
  waitMs: number;
  orderTimeoutMs: number;
  maxInMemory: number;
  forgetAfterMs: number;
  sweepIntervalMs: number;
  lockTtlMs: number;
  onFailure: 'default' | 'refuse';
}

const OWNER = 'onDemand';

function duration(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
    throw optionError(name, `must be a finite number of ms >= ${min}`, OWNER);
  return value;
}

export function resolveOnDemandOptions(options: OnDemandOptions): ResolvedOnDemandOptions {
  if (options === null || typeof options !== 'object')
    throw optionError('options', 'must be an object', OWNER);
  if (typeof options.decide !== 'function')
    throw optionError('decide', 'must be a function (name, info) => boolean | Promise<boolean>', OWNER);
  const maxInMemory = options.maxInMemory ?? 1000;
  if (!Number.isSafeInteger(maxInMemory) || maxInMemory < 1)
    throw optionError('maxInMemory', 'must be an integer >= 1', OWNER);
  const onFailure = options.onFailure ?? 'default';
  if (onFailure !== 'default' && onFailure !== 'refuse')
    throw optionError('onFailure', "must be 'default' or 'refuse'", OWNER);
  return {
    decide: options.decide,
    limits: resolveLimits(options.limits, OWNER),
    waitMs: duration(options.waitMs, 'waitMs', 10_000, 1),
    orderTimeoutMs: duration(options.orderTimeoutMs, 'orderTimeoutMs', 120_000, 1),
    maxInMemory,
    forgetAfterMs: duration(options.forgetAfterMs, 'forgetAfterMs', 30 * DAY, 1000),
    sweepIntervalMs: duration(options.sweepIntervalMs, 'sweepIntervalMs', 3_600_000, 0),
    lockTtlMs: duration(options.lockTtlMs, 'lockTtlMs', 30_000, 1000),
    onFailure,
  };
}
