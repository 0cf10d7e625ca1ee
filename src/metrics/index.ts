// `certkeeper/metrics`: Prometheus (prom-client) and OpenTelemetry collectors, both optional
// peers loaded only when their collector is created. Every exported name is listed here.
export { type CertificateSeries, type MetricsOptions, namesLabel, type Snapshot } from './model.js';
export {
  DEFAULT_MAX_CERTIFICATE_SERIES,
  DURATION_BUCKETS,
  METRICS,
  type MetricDefinition,
  type MetricKey,
  type MetricType,
} from './names.js';
export {
  createOpenTelemetryMetrics,
  type InstrumentOptions,
  type MeterLike,
  type OpenTelemetryMetrics,
  type OpenTelemetryMetricsOptions,
} from './opentelemetry.js';
export {
  createPrometheusCollector,
  type PrometheusCollector,
  type PrometheusCollectorOptions,
  type PromRegistryLike,
} from './prometheus.js';
