// The prom-client collector: every metric of the table with its type and labels, values read from
// status() at scrape time, counters and histograms fed by the events, and per-certificate series
// capped with the most urgent certificates kept.
import dc from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/diagnostics/channels.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { METRICS } from '../../src/metrics/names.js';
import { createPrometheusCollector } from '../../src/metrics/prometheus.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3_600_000;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function make(ids: string[], clock?: FakeClock) {
  const issuer = new SwitchableIssuer({ lifetimeMs: HOUR });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    certificates: ids.map((id) => ({ id, names: [`${id}.test`, `www.${id}.test`] })),
    logger: quiet,
    reconcileIntervalMs: 0,
    ...(clock ? { clock } : {}),
  });
  cleanup.push(() => manager.stop());
  return { manager, issuer };
}

/** The samples of one metric in a scrape: labels and value. */
async function samples(registry: Registry, name: string) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []) as { labels: Record<string, string>; value: number; metricName?: string }[];
}

describe('createPrometheusCollector', () => {
  it('registers every metric of the table with its type and labels; gauges read status() when scraped', async () => {
    const { manager, issuer } = make(['a', 'b']);
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry });
    cleanup.push(() => collector.close());
    await manager.start();
    await manager.ready();
    const json = await registry.getMetricsAsJSON();
    for (const def of Object.values(METRICS)) {
      const metric = json.find((m) => m.name === def.prometheus);
      expect(metric, def.prometheus).toBeDefined();
      expect(metric!.type, def.prometheus).toBe(def.type);
      expect(metric!.help).toBe(def.help);
      for (const v of metric!.values as { labels: Record<string, unknown> }[]) {
        const names = Object.keys(v.labels).filter((l) => l !== 'le');
        expect(names.sort(), def.prometheus).toEqual([...def.labels].sort());
      }
    }
    const [a, b] = manager.status();
    const expiration = await samples(registry, 'certkeeper_certificate_expiration_timestamp_seconds');
    expect(expiration).toEqual(
      expect.arrayContaining([
        { labels: { id: 'a', issuer: issuer.id }, value: a!.notAfter!.getTime() / 1000 },
        { labels: { id: 'b', issuer: issuer.id }, value: b!.notAfter!.getTime() / 1000 },
      ]),
    );
    expect(await samples(registry, 'certkeeper_certificate_not_before_timestamp_seconds')).toContainEqual({
      labels: { id: 'a', issuer: issuer.id },
      value: a!.notBefore!.getTime() / 1000,
    });
    expect(await samples(registry, 'certkeeper_certificate_renewal_timestamp_seconds')).toContainEqual({
      labels: { id: 'a', issuer: issuer.id },
      value: a!.nextRenewalAt!.getTime() / 1000,
    });
    expect(await samples(registry, 'certkeeper_certificate_ready')).toContainEqual({
      labels: { id: 'a', issuer: issuer.id },
      value: 1,
    });
    expect(await samples(registry, 'certkeeper_certificate_info')).toContainEqual({
      labels: {
        id: 'a',
        issuer: issuer.id,
        serial: a!.serial,
        names: 'a.test,www.a.test',
        purpose: 'server',
      },
      value: 1,
    });
    expect(await samples(registry, 'certkeeper_certificates')).toEqual(
      expect.arrayContaining([
        { labels: { state: 'valid' }, value: 2 },
        { labels: { state: 'missing' }, value: 0 },
      ]),
    );
    expect(await samples(registry, 'certkeeper_renewals_total')).toContainEqual({
      labels: { result: 'obtained' },
      value: 2,
    });
    const issuance = await samples(registry, 'certkeeper_issuance_duration_seconds');
    expect(issuance).toContainEqual(
      expect.objectContaining({
        metricName: 'certkeeper_issuance_duration_seconds_count',
        labels: { issuer: issuer.id, result: 'obtained' },
        value: 2,
      }),
    );
    // The text format a Prometheus server scrapes.
    const text = await registry.metrics();
    expect(text).toContain('# TYPE certkeeper_certificate_expiration_timestamp_seconds gauge');
    expect(text).toContain(`certkeeper_certificate_ready{id="b",issuer="${issuer.id}"} 1`);
  });

  it('counts renewals, failures by code, rollbacks and live checks as they happen', async () => {
    const { manager, issuer } = make(['a']);
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry });
    cleanup.push(() => collector.close());
    await manager.start();
    await manager.ready();
    await manager.renewNow('a');
    issuer.fault = 'down';
    await expect(manager.renewNow('a')).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    issuer.fault = 'wrong-name';
    await expect(manager.renewNow('a')).rejects.toMatchObject({ code: 'NAME_NOT_COVERED' });
    expect(await samples(registry, 'certkeeper_renewals_total')).toEqual(
      expect.arrayContaining([
        { labels: { result: 'obtained' }, value: 1 },
        { labels: { result: 'renewed' }, value: 1 },
        { labels: { result: 'failed' }, value: 2 },
        { labels: { result: 'adopted' }, value: 0 },
      ]),
    );
    expect(await samples(registry, 'certkeeper_renewal_failures_total')).toEqual(
      expect.arrayContaining([
        { labels: { code: 'ISSUER_UNAVAILABLE' }, value: 1 },
        { labels: { code: 'NAME_NOT_COVERED' }, value: 1 },
      ]),
    );
    expect(await samples(registry, 'certkeeper_rollbacks_total')).toEqual([
      { labels: { code: 'NAME_NOT_COVERED' }, value: 1 },
    ]);
    expect(await samples(registry, 'certkeeper_certificate_consecutive_failures')).toEqual([
      { labels: { id: 'a', issuer: issuer.id }, value: 2 },
    ]);
  });

  it('records deploy durations published on certkeeper:deploy for its manager only', async () => {
    const { manager } = make(['a']);
    const other = make(['b']).manager;
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry });
    cleanup.push(() => collector.close());
    const deploy = dc.channel(CHANNELS.deploy);
    deploy.publish({ manager, id: 'a', outcome: 'swapped', serial: '01', durationMs: 1500 });
    deploy.publish({ manager, id: 'a', outcome: 'rolled-back', serial: '02', durationMs: 20 });
    deploy.publish({ manager: other, id: 'b', outcome: 'swapped', serial: '03', durationMs: 7 });
    deploy.publish({ manager, id: 'a', outcome: 'swapped', serial: '04' }); // bridged: no timing
    const values = await samples(registry, 'certkeeper_deploy_duration_seconds');
    const count = (result: string) =>
      values.find((v) => v.metricName?.endsWith('_count') && v.labels.result === result)?.value;
    expect(count('swapped')).toBe(1);
    expect(count('rolled_back')).toBe(1);
    expect(values.find((v) => v.metricName?.endsWith('_sum') && v.labels.result === 'swapped')?.value).toBe(
      1.5,
    );
  });

  it('an expired certificate (FakeClock) reads ready 0 and keeps its expiration timestamp', async () => {
    const clock = new FakeClock();
    const { manager, issuer } = make(['a'], clock);
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry, clock });
    cleanup.push(() => collector.close());
    await manager.start();
    await clock.advance(0);
    await manager.ready();
    issuer.fault = 'down';
    const notAfter = manager.status()[0]!.notAfter!;
    const failed = nextEvent(manager, 'renewalFailed');
    await clock.advance(notAfter.getTime() - clock.now() + 60_000);
    await failed;
    expect(await samples(registry, 'certkeeper_certificate_ready')).toEqual([
      { labels: { id: 'a', issuer: issuer.id }, value: 0 },
    ]);
    expect(await samples(registry, 'certkeeper_certificates')).toContainEqual({
      labels: { state: 'expired' },
      value: 1,
    });
    expect((await samples(registry, 'certkeeper_certificate_expiration_timestamp_seconds'))[0]!.value).toBe(
      notAfter.getTime() / 1000,
    );
  });

  it('caps per-certificate series: the not-ready ones first, then the soonest to expire; the rest counted', async () => {
    const clock = new FakeClock();
    const { manager, issuer } = make(['c1', 'c2', 'c3', 'c4', 'c5'], clock);
    // c5 is never issued: nothing is served for it.
    issuer.fault = 'down';
    issuer.faultNames = ['c5.test'];
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry, clock, maxCertificateSeries: 2 });
    cleanup.push(() => collector.close());
    const failed = nextEvent(manager, 'renewalFailed', 15_000, (e) => e.id === 'c5');
    await manager.start();
    await clock.advance(0);
    await manager.ready({ ids: ['c1', 'c2', 'c3', 'c4'] });
    await failed;
    // c3, renewed a minute later, expires last.
    await clock.advance(60_000);
    await manager.renewNow('c3');
    const ready = await samples(registry, 'certkeeper_certificate_ready');
    expect(ready).toHaveLength(2);
    // c5 (nothing served) first, then the soonest-expiring of c1, c2, c4.
    expect(ready.map((r) => r.labels.id)).toContain('c5');
    expect(ready.map((r) => r.labels.id)).not.toContain('c3');
    expect(await samples(registry, 'certkeeper_certificate_series_omitted')).toEqual([
      { labels: {}, value: 3 },
    ]);
    expect(await samples(registry, 'certkeeper_certificates')).toEqual(
      expect.arrayContaining([
        { labels: { state: 'valid' }, value: 4 },
        { labels: { state: 'missing' }, value: 1 },
      ]),
    );
    expect(await samples(registry, 'certkeeper_certificate_info')).toHaveLength(2);
  });

  it('serves /metrics over plain http; one collector per registry; close() unregisters', async () => {
    const { manager } = make(['a']);
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry });
    await expect(createPrometheusCollector(manager, { registry })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'registry' },
    });
    const server = http.createServer(collector.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    expect(await response.text()).toContain('certkeeper_certificates{state="missing"} 1');
    expect((await fetch(`${base}/other`)).status).toBe(404);
    collector.close();
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });
});
