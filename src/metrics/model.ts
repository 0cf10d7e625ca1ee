/**
 * What both collectors export, independent of the metrics library: the per-certificate values
 * read from `status()` at scrape time (bounded), and the counters and histograms fed by the
 * manager's events and the `certkeeper:deploy` diagnostics channel.
 */
import dc from 'node:diagnostics_channel';
import { type Clock, systemClock } from '../clock.js';
import { CHANNELS, type DeployMessage } from '../diagnostics/channels.js';
import { optionError } from '../errors.js';
import type { ManagerEvents } from '../manager/events.js';
import type { CertificateManager } from '../manager/manager.js';
import { notReadyReason } from '../ops/health.js';
import { observe } from '../ops/observer.js';
import { DEFAULT_MAX_CERTIFICATE_SERIES } from './names.js';

export type MeteredManager = Pick<CertificateManager, 'status' | 'on' | 'off'>;

/** Options shared by the Prometheus and OpenTelemetry collectors. */
export interface MetricsOptions {
  /** The manager's clock (readiness and expiry are judged by it). Default: the system clock. */
  clock?: Pick<Clock, 'now'>;
  /**
   * At most this many certificates get per-certificate series (default 1000): those not ready
   * first, then the soonest to expire, so alerts on expiry still see the ones that matter. The
   * rest are counted in `certkeeper_certificate_series_omitted` and in `certkeeper_certificates`.
   */
  maxCertificateSeries?: number;
}

export interface ResolvedMetricsOptions {
  now: () => number;
  maxCertificateSeries: number;
}

export function resolveMetricsOptions(options: MetricsOptions = {}): ResolvedMetricsOptions {
  const fail = (option: string, message: string) => optionError(option, message, 'metrics');
  if (typeof options !== 'object' || options === null) throw fail('metrics', 'must be an object');
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function') throw fail('clock', 'must have now()');
  const max = options.maxCertificateSeries ?? DEFAULT_MAX_CERTIFICATE_SERIES;
  if (!Number.isInteger(max) || max < 0) throw fail('maxCertificateSeries', 'must be an integer >= 0');
  return { now: () => clock.now(), maxCertificateSeries: max };
}

/** The per-certificate values of one collection. */
export interface CertificateSeries {
  labels: { id: string; issuer: string };
  info: { id: string; issuer: string; serial: string; names: string; purpose: string };
  expiration: number | null;
  notBefore: number | null;
  renewal: number | null;
  ready: 0 | 1;
  failures: number;
}

/** One collection: per-certificate series and the counts by state. */
export interface Snapshot {
  series: CertificateSeries[];
  omitted: number;
  states: { valid: number; expired: number; missing: number };
}

const MAX_NAMES = 5;
const MAX_NAMES_LENGTH = 200;

/** The `names` label: the first names, comma-separated, shortened; how many more there are. */
export function namesLabel(names: readonly string[]): string {
  let label = names.slice(0, MAX_NAMES).join(',');
  if (label.length > MAX_NAMES_LENGTH) label = `${label.slice(0, MAX_NAMES_LENGTH - 1)}…`;
  return names.length > MAX_NAMES ? `${label},+${names.length - MAX_NAMES}` : label;
}

const seconds = (date: Date | null) => (date ? date.getTime() / 1000 : null);

export function snapshot(manager: MeteredManager, o: ResolvedMetricsOptions): Snapshot {
  const now = o.now();
  const observer = observe(manager);
  const statuses = manager.status();
  const states = { valid: 0, expired: 0, missing: 0 };
  const rows = statuses.map((s) => {
    states[s.state]++;
    const ready = notReadyReason(s, now, 0, observer.unverified(s)) === null ? 1 : 0;
    return { s, ready: ready as 0 | 1 };
  });
  // The most urgent first: not ready, then the soonest to expire.
  const urgent = (r: (typeof rows)[number]) => r.s.notAfter?.getTime() ?? Number.NEGATIVE_INFINITY;
  const kept =
    rows.length > o.maxCertificateSeries
      ? [...rows].sort((a, b) => a.ready - b.ready || urgent(a) - urgent(b)).slice(0, o.maxCertificateSeries)
      : rows;
  const series = kept.map(({ s, ready }): CertificateSeries => {
    const issuer = s.issuer ?? '';
    return {
      labels: { id: s.id, issuer },
      info: { id: s.id, issuer, serial: s.serial ?? '', names: namesLabel(s.names), purpose: s.purpose },
      expiration: seconds(s.notAfter),
      notBefore: seconds(s.notBefore),
      renewal: seconds(s.nextRenewalAt),
      ready,
      failures: s.failures,
    };
  });
  return { series, omitted: rows.length - kept.length, states };
}

export type CounterKey = 'renewals' | 'renewalFailures' | 'rollbacks' | 'liveChecks';
export type HistogramKey = 'issuanceDuration' | 'deployDuration';

export interface MetricsSink {
  count(key: CounterKey, labels: Record<string, string>): void;
  observe(key: HistogramKey, seconds: number, labels: Record<string, string>): void;
}

const CODE = /^[A-Z][A-Z0-9_]{0,39}$/;
const MAX_CODES = 100;

/** Error codes as label values: the typed codes, anything else (or beyond MAX_CODES) as OTHER. */
function codeLabel(seen: Set<string>) {
  return (code: unknown): string => {
    if (typeof code !== 'string' || !CODE.test(code)) return 'OTHER';
    if (!seen.has(code) && seen.size >= MAX_CODES) return 'OTHER';
    seen.add(code);
    return code;
  };
}

/** Feeds `sink` from the manager's events and the deploy channel; returns the function that stops it. */
export function bindEvents(manager: MeteredManager, sink: MetricsSink): () => void {
  const code = codeLabel(new Set());
  const handlers: { [K in keyof ManagerEvents]?: (payload: ManagerEvents[K][0]) => void } = {
    obtained: ({ issuer, durationMs }) => {
      sink.count('renewals', { result: 'obtained' });
      sink.observe('issuanceDuration', durationMs / 1000, { issuer, result: 'obtained' });
    },
    renewed: ({ issuer, durationMs }) => {
      sink.count('renewals', { result: 'renewed' });
      sink.observe('issuanceDuration', durationMs / 1000, { issuer, result: 'renewed' });
    },
    adopted: () => sink.count('renewals', { result: 'adopted' }),
    renewalFailed: ({ error }) => {
      sink.count('renewals', { result: 'failed' });
      sink.count('renewalFailures', { code: code(error.code) });
    },
    rolledBack: ({ reason }) => sink.count('rollbacks', { code: code(reason.code) }),
    swapped: ({ verified }) => {
      if (verified > 0) sink.count('liveChecks', { result: 'ok' });
    },
    liveVerifyFailed: () => sink.count('liveChecks', { result: 'failed' }),
  };
  const entries = Object.entries(handlers) as [keyof ManagerEvents, (payload: never) => void][];
  for (const [name, handler] of entries) manager.on(name, handler as never);
  const onDeploy = (message: unknown) => {
    const m = message as DeployMessage;
    if (m.manager !== manager || typeof m.durationMs !== 'number' || !(m.durationMs >= 0)) return;
    sink.observe('deployDuration', m.durationMs / 1000, {
      result: m.outcome === 'swapped' ? 'swapped' : 'rolled_back',
    });
  };
  dc.subscribe(CHANNELS.deploy, onDeploy);
  return () => {
    for (const [name, handler] of entries) manager.off(name, handler as never);
    dc.unsubscribe(CHANNELS.deploy, onDeploy);
  };
}
