/**
 * The prom-client collector: `await createPrometheusCollector(manager, { registry })` registers
 * certkeeper's metrics (./names.ts) in a prom-client registry (default: prom-client's global
 * one). prom-client is an optional peer, loaded on this call; pass `client` to use a copy you
 * imported yourself. Per-certificate gauges are read from `status()` when scraped, so a scrape
 * costs one `status()` call and nothing runs on the handshake path.
 */
import { optionError } from '../errors.js';
import { methodNotAllowed, type NodeHandler, pathOf, send, text } from '../ops/http.js';
import {
  bindEvents,
  type CounterKey,
  type HistogramKey,
  type MeteredManager,
  type MetricsOptions,
  resolveMetricsOptions,
  type Snapshot,
  snapshot,
} from './model.js';
import { DURATION_BUCKETS, METRICS, type MetricKey } from './names.js';
import { loadOptional } from './peer.js';

type PromClient = typeof import('prom-client');

/**
 * A prom-client `Registry`, structurally (so the types of certkeeper/metrics do not need
 * prom-client installed where only the OpenTelemetry collector is used).
 */
export interface PromRegistryLike {
  getSingleMetric(name: string): unknown;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
  readonly contentType: string;
}
type Registry = PromRegistryLike;

/** Options of `createPrometheusCollector`. */
export interface PrometheusCollectorOptions extends MetricsOptions {
  /** The registry to register in. Default: prom-client's global `register`. */
  registry?: Registry;
  /** The prom-client module, when it is not to be imported by name (bundlers, several copies). */
  client?: unknown;
}

/** What `createPrometheusCollector` returns: the registry and an HTTP handler serving it. */
export interface PrometheusCollector {
  readonly registry: Registry;
  /** Serves the registry in the Prometheus text format on GET `/metrics` (plain http, Express). */
  readonly handler: NodeHandler;
  /** Stops counting and removes certkeeper's metrics from the registry. */
  close(): void;
}

type CertificateGauge = 'expiration' | 'notBefore' | 'renewal' | 'ready' | 'failures';

export async function createPrometheusCollector(
  manager: MeteredManager,
  options: PrometheusCollectorOptions = {},
): Promise<PrometheusCollector> {
  const { registry: given, client: givenClient, ...rest } = options;
  const o = resolveMetricsOptions(rest);
  const client =
    (givenClient as PromClient | undefined) ??
    (await loadOptional<PromClient>('prom-client', () => import('prom-client')));
  const registry: Registry = given ?? client.register;
  const taken = Object.values(METRICS).filter((m) => registry.getSingleMetric(m.prometheus));
  if (taken.length > 0) {
    throw optionError(
      'registry',
      `already has ${taken[0]!.prometheus}: one collector per registry (close the other first)`,
      'createPrometheusCollector',
    );
  }

  // One status() per scrape: every gauge's collect() in a scrape runs in the same tick.
  let cached: Snapshot | undefined;
  const current = (): Snapshot => {
    if (!cached) {
      cached = snapshot(manager, o);
      setImmediate(() => {
        cached = undefined;
      });
    }
    return cached;
  };

  const registers = [registry as import('prom-client').Registry];
  const def = (key: MetricKey) => ({
    name: METRICS[key].prometheus,
    help: METRICS[key].help,
    labelNames: [...METRICS[key].labels],
    registers,
  });
  const perCertificate = (key: CertificateGauge) =>
    new client.Gauge({
      ...def(key),
      collect() {
        this.reset();
        for (const s of current().series) {
          const value = s[key];
          if (value !== null) this.set(s.labels, value);
        }
      },
    });
  const created = [
    perCertificate('expiration'),
    perCertificate('notBefore'),
    perCertificate('renewal'),
    perCertificate('ready'),
    perCertificate('failures'),
    new client.Gauge({
      ...def('info'),
      collect() {
        this.reset();
        for (const s of current().series) this.set(s.info, 1);
      },
    }),
    new client.Gauge({
      ...def('certificates'),
      collect() {
        for (const [state, count] of Object.entries(current().states)) this.set({ state }, count);
      },
    }),
    new client.Gauge({
      ...def('omitted'),
      collect() {
        this.set(current().omitted);
      },
    }),
  ];
  const counters = {
    renewals: new client.Counter(def('renewals')),
    renewalFailures: new client.Counter(def('renewalFailures')),
    rollbacks: new client.Counter(def('rollbacks')),
    liveChecks: new client.Counter(def('liveChecks')),
  } satisfies Record<CounterKey, unknown>;
  const histograms = {
    issuanceDuration: new client.Histogram({ ...def('issuanceDuration'), buckets: DURATION_BUCKETS }),
    deployDuration: new client.Histogram({ ...def('deployDuration'), buckets: DURATION_BUCKETS }),
  } satisfies Record<HistogramKey, unknown>;
  // Series that exist from the start, so rate() and absent() work before the first event.
  for (const result of ['obtained', 'renewed', 'adopted', 'failed']) counters.renewals.inc({ result }, 0);
  for (const result of ['ok', 'failed']) counters.liveChecks.inc({ result }, 0);

  const unbind = bindEvents(manager, {
    count: (key, labels) => counters[key].inc(labels),
    observe: (key, value, labels) => histograms[key].observe(labels, value),
  });
  const handler: NodeHandler = (req, res, next) => {
    if (pathOf(req.url) !== '/metrics') {
      if (next) next();
      else send(res, text(404, 'not found\n'), req.method);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, methodNotAllowed(), req.method);
    registry.metrics().then(
      (body) => send(res, text(200, body, { 'content-type': registry.contentType }), req.method),
      (error: unknown) => (next ? next(error) : send(res, text(500, 'metrics failed\n'), req.method)),
    );
  };
  return {
    registry,
    handler,
    close() {
      unbind();
      for (const metric of [...created, ...Object.values(counters), ...Object.values(histograms)])
        registry.removeSingleMetric((metric as unknown as { name: string }).name);
    },
  };
}
