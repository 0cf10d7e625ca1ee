// A real Prometheus (Debian's package) scrapes a certkeeper process on loopback: its query API
// returns certkeeper's series with their values, names and types; the example alert rules,
// loaded by that Prometheus, fire on a certificate that expired; every query of the example
// Grafana dashboard runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { METRICS } from '../../src/metrics/names.js';
import { createPrometheusCollector, type PrometheusCollector } from '../../src/metrics/prometheus.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { closedPort } from '../support/services.js';
import { requireTools } from '../support/system-tools.js';

const MONITORING = fileURLToPath(new URL('../../examples/monitoring/', import.meta.url));
const tools = requireTools(['prometheus'], 'prometheus', 'tests against a real Prometheus server');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3_600_000;

type Vector = { metric: Record<string, string>; value: [number, string] }[];

describe.skipIf(!tools)('a real Prometheus scraping certkeeper', () => {
  let work: string;
  let prometheus: ChildProcess | undefined;
  let api: string;
  let manager: CertificateManager;
  let collector: PrometheusCollector;
  let server: http.Server;
  let issuerId: string;
  let log = '';

  async function query(
    expr: string,
  ): Promise<{ status: string; data: { result: Vector; resultType: string } }> {
    const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return response.json() as never;
  }

  /** Polls `check` until it returns a value (bounded: Prometheus scrapes and evaluates every second). */
  async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const value = await check().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms\n${log.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'certkeeper-prometheus-'));
    // The certificate was issued three days ago (the manager's clock) and lasted a day: to
    // Prometheus, on the real clock, it expired two days ago.
    const clock = new FakeClock(Date.now() - 72 * HOUR);
    const issuer = new SwitchableIssuer({ lifetimeMs: 24 * HOUR });
    issuerId = issuer.id;
    manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      clock,
      certificates: [
        { id: 'web', names: ['web.test', 'www.web.test'] },
        { id: 'api', names: ['api.test'] },
      ],
      logger: quiet,
      reconcileIntervalMs: 0,
    });
    const registry = new Registry();
    collector = await createPrometheusCollector(manager, { registry, clock });
    await manager.start();
    await clock.advance(0);
    await manager.ready();
    server = http.createServer(collector.handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const port = await closedPort();
    api = `http://127.0.0.1:${port}`;
    const config = join(work, 'prometheus.yml');
    writeFileSync(
      config,
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(MONITORING, 'certkeeper-alerts.yml')],
        scrape_configs: [{ job_name: 'certkeeper', static_configs: [{ targets: [target] }] }],
      }),
    );
    prometheus = spawn(
      tools!.prometheus,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(work, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d) => {
      log += d;
    });
    prometheus.stderr!.on('data', (d) => {
      log += d;
    });
    await until('Prometheus ready', async () => ((await fetch(`${api}/-/ready`)).ok ? true : undefined));
  }, 60_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    await new Promise((resolve) => server?.close(resolve));
    collector?.close();
    await manager?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('its query API returns the series certkeeper exports, with their values and labels', async () => {
    const expiration = await until('expiration series', async () => {
      const r = await query('certkeeper_certificate_expiration_timestamp_seconds');
      return r.data.result.length === 2 ? r.data.result : undefined;
    });
    for (const status of manager.status()) {
      const sample = expiration.find((s) => s.metric.id === status.id)!;
      expect(sample.metric).toEqual({
        __name__: 'certkeeper_certificate_expiration_timestamp_seconds',
        id: status.id,
        issuer: issuerId,
        job: 'certkeeper',
        instance: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      });
      expect(Number(sample.value[1])).toBe(status.notAfter!.getTime() / 1000);
    }
    const info = (await query('certkeeper_certificate_info{id="web"}')).data.result[0]!;
    expect(info.metric).toMatchObject({
      serial: manager.status()[0]!.serial,
      names: 'web.test,www.web.test',
    });
    expect((await query('certkeeper_renewals_total{result="obtained"}')).data.result[0]!.value[1]).toBe('2');
  });

  it('knows every metric by name and type (metadata API)', async () => {
    const response = await until('metadata', async () => {
      const r = (await (await fetch(`${api}/api/v1/metadata`)).json()) as {
        data: Record<string, { type: string }[]>;
      };
      return r.data.certkeeper_certificate_ready ? r.data : undefined;
    });
    for (const def of Object.values(METRICS)) {
      // The deploy histogram has no series until the manager publishes deploy timings.
      if (def.prometheus === 'certkeeper_deploy_duration_seconds') continue;
      expect(response[def.prometheus]?.[0]?.type, def.prometheus).toBe(def.type);
    }
  });

  it('evaluates the example rules: the expired certificate fires CertkeeperCertificateExpired', async () => {
    const alerts = await until('firing alert', async () => {
      const r = (await (await fetch(`${api}/api/v1/alerts`)).json()) as {
        data: { alerts: { labels: Record<string, string>; state: string }[] };
      };
      const firing = r.data.alerts.filter((a) => a.labels.alertname === 'CertkeeperCertificateExpired');
      return firing.length === 2 && firing.every((a) => a.state === 'firing') ? r.data.alerts : undefined;
    });
    expect(alerts.map((a) => a.labels.id).sort()).toEqual(['api', 'api', 'web', 'web']);
    // 'expiring' waits 10 minutes before firing: pending now.
    expect(
      alerts.filter((a) => a.labels.alertname === 'CertkeeperCertificateExpiring').map((a) => a.state),
    ).toEqual(['pending', 'pending']);
    const rules = (await (await fetch(`${api}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string }[] }[] };
    };
    expect(rules.data.groups[0]!.rules.map((r) => r.health)).toEqual(Array(5).fill('ok'));
  });

  it('runs every query of the example Grafana dashboard', async () => {
    const dashboard = JSON.parse(readFileSync(join(MONITORING, 'certkeeper-dashboard.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) =>
      p.targets.map((t) => t.expr),
    );
    expect(exprs.length).toBeGreaterThan(8);
    for (const expr of exprs) {
      const resolved = expr.replaceAll('$job', '.*').replaceAll('$__rate_interval', '1m');
      const result = await query(resolved);
      expect(result.status, expr).toBe('success');
    }
    const soonest = await query(
      exprs.find((e) => e.startsWith('min(certkeeper_certificate_expiration'))!.replaceAll('$job', '.*'),
    );
    expect(Number(soonest.data.result[0]!.value[1])).toBeLessThan(0); // expired: a negative time left
    const variable = dashboard.templating.list.find((v: { name: string }) => v.name === 'job');
    const values = (await (
      await fetch(`${api}/api/v1/label/job/values?match[]=certkeeper_certificates`)
    ).json()) as {
      data: string[];
    };
    expect(variable.definition).toBe('label_values(certkeeper_certificates, job)');
    expect(values.data).toEqual(['certkeeper']);
  });
});
