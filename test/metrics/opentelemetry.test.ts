// The OpenTelemetry collector against the real SDK (@opentelemetry/sdk-metrics): instrument names,
// units, kinds and attributes as the table says, observable gauges read at collection time,
// counters and histograms fed by the events.
import { metrics } from '@opentelemetry/api';
import {
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricData,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/manager/manager.js';
import { METRICS } from '../../src/metrics/names.js';
import { createOpenTelemetryMetrics } from '../../src/metrics/opentelemetry.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A reader the test pulls from (collect()), as a Prometheus exporter would on a scrape. */
class PullReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

async function collected(reader: PullReader): Promise<MetricData[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

function started(ids: string[]) {
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const manager = createCertificateManager({
    store: new MemoryStore(),
    issuer,
    certificates: ids.map((id) => ({ id, names: [`${id}.test`] })),
    logger: quiet,
    reconcileIntervalMs: 0,
  });
  cleanup.push(() => manager.stop());
  return { manager, issuer };
}

const KIND = { gauge: DataPointType.GAUGE, counter: DataPointType.SUM, histogram: DataPointType.HISTOGRAM };

describe('createOpenTelemetryMetrics', () => {
  it('creates every instrument of the table (name, unit, kind, attributes) on the given meter', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    cleanup.push(() => provider.shutdown());
    const { manager, issuer } = started(['a', 'b']);
    const otel = await createOpenTelemetryMetrics(manager, { meter: provider.getMeter('certkeeper') });
    cleanup.push(() => otel.close());
    await manager.start();
    await manager.ready();
    await manager.renewNow('a');
    issuer.fault = 'down';
    await expect(manager.renewNow('b')).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    issuer.fault = 'wrong-name';
    await expect(manager.renewNow('b')).rejects.toMatchObject({ code: 'NAME_NOT_COVERED' });

    const data = await collected(reader);
    for (const def of Object.values(METRICS)) {
      if (def.prometheus === 'certkeeper_deploy_duration_seconds') continue; // nothing published yet
      const metric = data.find((m) => m.descriptor.name === def.otel);
      expect(metric, def.otel).toBeDefined();
      expect(metric!.descriptor.unit, def.otel).toBe(def.unit);
      expect(metric!.descriptor.description).toBe(def.help);
      expect(metric!.dataPointType, def.otel).toBe(KIND[def.type]);
      for (const point of metric!.dataPoints)
        expect(Object.keys(point.attributes).sort(), def.otel).toEqual([...def.labels].sort());
    }
    const find = (name: string) => data.find((m) => m.descriptor.name === name)!;
    const a = manager.status().find((s) => s.id === 'a')!;
    expect(find('certkeeper.certificate.expiration_timestamp').dataPoints).toContainEqual(
      expect.objectContaining({
        attributes: { id: 'a', issuer: issuer.id },
        value: a.notAfter!.getTime() / 1000,
      }),
    );
    expect(find('certkeeper.certificate.info').dataPoints).toContainEqual(
      expect.objectContaining({
        attributes: { id: 'a', issuer: issuer.id, serial: a.serial, names: 'a.test', purpose: 'server' },
        value: 1,
      }),
    );
    const renewals = find('certkeeper.renewals').dataPoints.map((p) => [p.attributes.result, p.value]);
    expect(renewals).toEqual(
      expect.arrayContaining([
        ['obtained', 2],
        ['renewed', 1],
        ['failed', 2],
        ['adopted', 0],
      ]),
    );
    expect(find('certkeeper.renewal.failures').dataPoints).toContainEqual(
      expect.objectContaining({ attributes: { code: 'ISSUER_UNAVAILABLE' }, value: 1 }),
    );
    const issuance = find('certkeeper.issuance.duration') as HistogramMetricData;
    const obtained = issuance.dataPoints.find((p) => p.attributes.result === 'obtained')!;
    expect(obtained.value.count).toBe(2);
    expect(obtained.value.buckets.boundaries).toContain(600);
    expect(find('certkeeper.certificate.consecutive_failures').dataPoints).toContainEqual(
      expect.objectContaining({ attributes: { id: 'b', issuer: issuer.id }, value: 2 }),
    );
    expect(find('certkeeper.rollbacks').dataPoints).toContainEqual(
      expect.objectContaining({ attributes: { code: 'NAME_NOT_COVERED' }, value: 1 }),
    );
  });

  it('uses the global MeterProvider when no meter is given, and stops observing on close()', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);
    cleanup.push(() => {
      metrics.disable();
      return provider.shutdown();
    });
    const { manager } = started(['a']);
    const otel = await createOpenTelemetryMetrics(manager);
    await manager.start();
    await manager.ready();
    const serials = (data: MetricData[]) =>
      data
        .find((m) => m.descriptor.name === 'certkeeper.certificate.info')
        ?.dataPoints.map((p) => p.attributes.serial) ?? [];
    const first = manager.status()[0]!.serial;
    expect(serials(await collected(reader))).toEqual([first]);
    otel.close();
    await manager.renewNow('a');
    const renewed = manager.status()[0]!.serial;
    expect(renewed).not.toBe(first);
    const after = await collected(reader);
    // Neither observed nor counted any more: the renewal after close() is not seen.
    expect(serials(after)).not.toContain(renewed);
    expect(after.find((m) => m.descriptor.name === 'certkeeper.renewals')!.dataPoints).toContainEqual(
      expect.objectContaining({ attributes: { result: 'renewed' }, value: 0 }),
    );
  });
});
