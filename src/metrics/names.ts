/**
 * Every metric certkeeper exports: one table for both collectors, the documentation and the
 * tests. Prometheus names follow the style people already alert on (cert-manager's
 * `certmanager_certificate_expiration_timestamp_seconds`); OpenTelemetry names are the dotted
 * form with a unit, which an OpenTelemetry-to-Prometheus exporter turns into the same names.
 *
 * Labels are bounded: per-certificate series exist for at most `maxCertificateSeries`
 * certificates (the most urgent first), counters are labelled by result and error code only,
 * histograms by issuer and result.
 */

export type MetricType = 'gauge' | 'counter' | 'histogram';

/** One metric: its Prometheus and OpenTelemetry names, type, help and labels. */
export interface MetricDefinition {
  /** Prometheus name (counters end in `_total`). */
  prometheus: string;
  /** OpenTelemetry instrument name. */
  otel: string;
  /** OpenTelemetry unit ('s' for seconds, '' for none). */
  unit: string;
  type: MetricType;
  labels: readonly string[];
  help: string;
  /** A gauge with one series per certificate (bounded by `maxCertificateSeries`). */
  perCertificate?: boolean;
}

const CERT = ['id', 'issuer'] as const;

/** Every metric certkeeper exports, by key. */
export const METRICS = {
  expiration: {
    prometheus: 'certkeeper_certificate_expiration_timestamp_seconds',
    otel: 'certkeeper.certificate.expiration_timestamp',
    unit: 's',
    type: 'gauge',
    labels: CERT,
    help: 'The notAfter of the served certificate, in seconds since the epoch.',
    perCertificate: true,
  },
  notBefore: {
    prometheus: 'certkeeper_certificate_not_before_timestamp_seconds',
    otel: 'certkeeper.certificate.not_before_timestamp',
    unit: 's',
    type: 'gauge',
    labels: CERT,
    help: 'The notBefore of the served certificate, in seconds since the epoch.',
    perCertificate: true,
  },
  renewal: {
    prometheus: 'certkeeper_certificate_renewal_timestamp_seconds',
    otel: 'certkeeper.certificate.renewal_timestamp',
    unit: 's',
    type: 'gauge',
    labels: CERT,
    help: 'When the next attempt to renew (or retry) is planned, in seconds since the epoch.',
    perCertificate: true,
  },
  ready: {
    prometheus: 'certkeeper_certificate_ready',
    otel: 'certkeeper.certificate.ready',
    unit: '',
    type: 'gauge',
    labels: CERT,
    help: '1 when the certificate is served, valid now and its live check did not fail; else 0.',
    perCertificate: true,
  },
  failures: {
    prometheus: 'certkeeper_certificate_consecutive_failures',
    otel: 'certkeeper.certificate.consecutive_failures',
    unit: '',
    type: 'gauge',
    labels: CERT,
    help: 'Attempts to obtain or renew that failed in a row (0 after a success).',
    perCertificate: true,
  },
  info: {
    prometheus: 'certkeeper_certificate_info',
    otel: 'certkeeper.certificate.info',
    unit: '',
    type: 'gauge',
    labels: ['id', 'issuer', 'serial', 'names', 'purpose'],
    help: 'Always 1; the served certificate as labels (names: the first ones, shortened).',
    perCertificate: true,
  },
  certificates: {
    prometheus: 'certkeeper_certificates',
    otel: 'certkeeper.certificates',
    unit: '',
    type: 'gauge',
    labels: ['state'],
    help: 'Managed certificates by state (valid, expired, missing), all of them.',
  },
  omitted: {
    prometheus: 'certkeeper_certificate_series_omitted',
    otel: 'certkeeper.certificate.series_omitted',
    unit: '',
    type: 'gauge',
    labels: [],
    help: 'Certificates without per-certificate series because of maxCertificateSeries.',
  },
  renewals: {
    prometheus: 'certkeeper_renewals_total',
    otel: 'certkeeper.renewals',
    unit: '',
    type: 'counter',
    labels: ['result'],
    help: 'Attempts to obtain or renew a certificate by result (obtained, renewed, adopted, failed).',
  },
  renewalFailures: {
    prometheus: 'certkeeper_renewal_failures_total',
    otel: 'certkeeper.renewal.failures',
    unit: '',
    type: 'counter',
    labels: ['code'],
    help: 'Failed attempts to obtain or renew, by error code.',
  },
  rollbacks: {
    prometheus: 'certkeeper_rollbacks_total',
    otel: 'certkeeper.rollbacks',
    unit: '',
    type: 'counter',
    labels: ['code'],
    help: 'New certificates refused or undone (validation, live check), by error code.',
  },
  liveChecks: {
    prometheus: 'certkeeper_live_checks_total',
    otel: 'certkeeper.live_checks',
    unit: '',
    type: 'counter',
    labels: ['result'],
    help: 'Live handshakes to the servers after a swap, by result (ok, failed).',
  },
  issuanceDuration: {
    prometheus: 'certkeeper_issuance_duration_seconds',
    otel: 'certkeeper.issuance.duration',
    unit: 's',
    type: 'histogram',
    labels: ['issuer', 'result'],
    help: 'Duration of successful attempts, from the start of the attempt to the verified swap.',
  },
  deployDuration: {
    prometheus: 'certkeeper_deploy_duration_seconds',
    otel: 'certkeeper.deploy.duration',
    unit: 's',
    type: 'histogram',
    labels: ['result'],
    help: 'Store, swap and live check of a new certificate (when the manager publishes its timing).',
  },
} as const satisfies Record<string, MetricDefinition>;

/** The key of a metric in `METRICS`. */
export type MetricKey = keyof typeof METRICS;

/** Buckets of the duration histograms, in seconds: an internal CA takes milliseconds, an ACME order minutes. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** Default cap on the certificates with per-certificate series. */
export const DEFAULT_MAX_CERTIFICATE_SERIES = 1000;
