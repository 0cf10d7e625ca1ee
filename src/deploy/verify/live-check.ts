/**
 * Proof after a reload that a real client gets the deployed certificate: probes an endpoint
 * until it serves the expected fingerprint, within a bound. Services take a moment to pick up a
 * reload (nginx starts new workers, PostgreSQL's postmaster signals its children), so one
 * probe is not enough; a service still serving anything else when the bound runs out fails the
 * check with `LIVE_VERIFY_FAILED`, naming what it served.
 */
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import type { LiveCheck } from '../target.js';
import { PROTOCOLS, type Protocol } from './preambles.js';
import { probeOnce, type Served } from './probe.js';

/** Where and how to check a deployed certificate. */
export interface LiveEndpoint {
  host: string;
  port: number;
  /**
   * SNI to present. Default: the certificate's first DNS name (so one endpoint serving several
   * certificates by name is checked for the right one), none for an IP-only certificate.
   */
  servername?: string;
  /** What precedes TLS on the connection. Default `tls` (TLS from the first byte). */
  protocol?: Protocol;
  /** The whole bound, retries included. Default 15 000 ms. */
  timeoutMs?: number;
  /** Pause between probes. Default 100 ms. */
  intervalMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_INTERVAL_MS = 100;
/** One probe's own limit: a hung service must not eat the whole bound in one attempt. */
const PROBE_TIMEOUT_MS = 5_000;

function positive(value: unknown, option: string, owner: string): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) > 0)) {
    throw optionError(option, 'must be a positive integer (ms)', owner);
  }
}

/** Validates an endpoint once, at construction. */
export function validateEndpoint(endpoint: LiveEndpoint, option: string, owner: string): void {
  if (typeof endpoint !== 'object' || endpoint === null)
    throw optionError(option, 'must be an object', owner);
  if (typeof endpoint.host !== 'string' || endpoint.host === '') {
    throw optionError(`${option}.host`, 'must be a host name or address', owner);
  }
  if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) {
    throw optionError(`${option}.port`, 'must be a port number (1-65535)', owner);
  }
  if (endpoint.protocol !== undefined && !PROTOCOLS.includes(endpoint.protocol)) {
    throw optionError(`${option}.protocol`, `must be one of ${PROTOCOLS.join(', ')}`, owner);
  }
  if (endpoint.servername !== undefined && typeof endpoint.servername !== 'string') {
    throw optionError(`${option}.servername`, 'must be a string', owner);
  }
  positive(endpoint.timeoutMs, `${option}.timeoutMs`, owner);
  positive(endpoint.intervalMs, `${option}.intervalMs`, owner);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Probes `endpoint` until it serves `expected` (a SHA-256 fingerprint). `names` are the
 * certificate's DNS names (the default SNI).
 */
export async function checkLive(
  target: string,
  endpoint: LiveEndpoint,
  expected: string,
  names: readonly string[],
  signal: AbortSignal,
): Promise<LiveCheck> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const servername = endpoint.servername ?? names[0];
  const protocol = endpoint.protocol ?? 'tls';
  const until = Date.now() + (endpoint.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let served: Served | null = null;
  let failure: string | null = null;
  let attempts = 0;
  do {
    attempts++;
    try {
      const remaining = Math.max(1, Math.min(PROBE_TIMEOUT_MS, until - Date.now()));
      served = await probeOnce(
        { host: endpoint.host, port: endpoint.port, servername, protocol },
        remaining,
        signal,
      );
      failure = null;
      if (served.fingerprint256 === expected) {
        return { target, endpoint: where, fingerprint256: served.fingerprint256 };
      }
    } catch (error) {
      failure = describeCause(error);
    }
    if (signal.aborted) break;
    await sleep(
      Math.min(endpoint.intervalMs ?? DEFAULT_INTERVAL_MS, Math.max(0, until - Date.now())),
      signal,
    );
  } while (Date.now() < until && !signal.aborted);
  const seen = failure ?? `served ${served?.fingerprint256} (serial ${served?.serial})`;
  throw new CertkeeperError(
    'LIVE_VERIFY_FAILED',
    `${target}: ${where} (${protocol}, SNI ${servername ?? 'none'}) did not serve ${expected} after ${attempts} attempts: ${seen}`,
    {
      details: {
        target,
        endpoint: where,
        protocol,
        servername,
        expected,
        served: served?.fingerprint256 ?? null,
        attempts,
        ...(failure ? { reason: failure } : {}),
      },
    },
  );
}
