/**
 * The OpenTelemetry collector: `await createOpenTelemetryMetrics(manager, { meter })` creates
 * certkeeper's instruments (./names.ts, dotted names with units) on a Meter, by default the
 * global MeterProvider's `certkeeper` meter from `@opentelemetry/api` (an optional peer, loaded
 * only here). Per-certificate gauges are observable: read from `status()` when the SDK collects.
 */
import { VERSION } from '../version.js';
import {
  bindEvents,
  type CounterKey,
  type HistogramKey,
  type MeteredManager,
  type MetricsOptions,
  resolveMetricsOptions,
  snapshot,
} from './model.js';
import { DURATION_BUCKETS, METRICS, type MetricKey } from './names.js';
import { loadOptional } from './peer.js';

type Attributes = Record<string, string>;

/** The part of an OpenTelemetry `Meter` certkeeper uses (structural: the API package is optional). */
export interface MeterLike {
  createObservableGauge(name: string, options?: InstrumentOptions): ObservableLike;
  createCounter(
    name: string,
    options?: InstrumentOptions,
  ): { add(value: number, attributes?: Attributes): void };
  createHistogram(
    name: string,
    options?: InstrumentOptions,
  ): { record(value: number, attributes?: Attributes): void };
  addBatchObservableCallback(callback: BatchCallback, observables: ObservableLike[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: ObservableLike[]): void;
}

/** Options of an OpenTelemetry instrument, as the `MeterLike` interface takes them. */
export interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

// biome-ignore lint/suspicious/noExplicitAny: an OpenTelemetry Observable is opaque to its users
export type ObservableLike = any;
type BatchCallback = (observer: {
  observe(observable: ObservableLike, value: number, attributes?: Attributes): void;
}) => void;

/** Options of `createOpenTelemetryMetrics`. */
export interface OpenTelemetryMetricsOptions extends MetricsOptions {
  /** Default: `metrics.getMeter('certkeeper', version)` from `@opentelemetry/api`. */
  meter?: MeterLike;
}

/** What `createOpenTelemetryMetrics` returns. */
export interface OpenTelemetryMetrics {
  /** Stops observing and counting (instruments stay registered with the meter, as OpenTelemetry has it). */
  close(): void;
}

export async function createOpenTelemetryMetrics(
  manager: MeteredManager,
  options: OpenTelemetryMetricsOptions = {},
): Promise<OpenTelemetryMetrics> {
  const { meter: given, ...rest } = options;
  const o = resolveMetricsOptions(rest);
  const meter =
    given ??
    (
      await loadOptional<{ metrics: { getMeter(name: string, version?: string): MeterLike } }>(
        '@opentelemetry/api',
        () => import('@opentelemetry/api'),
      )
    ).metrics.getMeter('certkeeper', VERSION);

  const opts = (key: MetricKey): InstrumentOptions => ({
    description: METRICS[key].help,
    ...(METRICS[key].unit ? { unit: METRICS[key].unit } : {}),
  });
  const gauge = (key: MetricKey) => meter.createObservableGauge(METRICS[key].otel, opts(key));
  const gauges = {
    expiration: gauge('expiration'),
    notBefore: gauge('notBefore'),
    renewal: gauge('renewal'),
    ready: gauge('ready'),
    failures: gauge('failures'),
    info: gauge('info'),
    certificates: gauge('certificates'),
    omitted: gauge('omitted'),
  };
  const observables = Object.values(gauges);
  const callback: BatchCallback = (observer) => {
    const snap = snapshot(manager, o);
    for (const s of snap.series) {
      for (const key of ['expiration', 'notBefore', 'renewal', 'ready', 'failures'] as const) {
        const value = s[key];
        if (value !== null) observer.observe(gauges[key], value, s.labels);
      }
      observer.observe(gauges.info, 1, s.info);
    }
    for (const [state, count] of Object.entries(snap.states))
      observer.observe(gauges.certificates, count, { state });
    observer.observe(gauges.omitted, snap.omitted);
  };
  meter.addBatchObservableCallback(callback, observables);

  const counter = (key: CounterKey) => meter.createCounter(METRICS[key].otel, opts(key));
  const counters = {
    renewals: counter('renewals'),
    renewalFailures: counter('renewalFailures'),
    rollbacks: counter('rollbacks'),
    liveChecks: counter('liveChecks'),
  };
  const histogram = (key: HistogramKey) =>
    meter.createHistogram(METRICS[key].otel, {
      ...opts(key),
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  const histograms = {
    issuanceDuration: histogram('issuanceDuration'),
    deployDuration: histogram('deployDuration'),
  };
  for (const result of ['obtained', 'renewed', 'adopted', 'failed']) counters.renewals.add(0, { result });
  for (const result of ['ok', 'failed']) counters.liveChecks.add(0, { result });

  const unbind = bindEvents(manager, {
    count: (key, labels) => counters[key].add(1, labels),
    observe: (key, value, labels) => histograms[key].record(value, labels),
  });
  return {
    close() {
      unbind();
      meter.removeBatchObservableCallback(callback, observables);
    },
  };
}
