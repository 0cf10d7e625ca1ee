// The example alert rules (examples/monitoring) checked by Prometheus' own promtool: they load,
// their unit tests pass, and they fire on the series certkeeper itself exports: a manager under a
// FakeClock (set near the epoch, where promtool's time starts) lets its certificate expire while
// the issuer is down; its scrape becomes promtool's input, and 'expiring' and 'expired' fire.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createPrometheusCollector } from '../../src/metrics/prometheus.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { requireTools } from '../support/system-tools.js';

const MONITORING = fileURLToPath(new URL('../../examples/monitoring/', import.meta.url));
const RULES = join(MONITORING, 'certkeeper-alerts.yml');
const tools = requireTools(['promtool'], 'prometheus', 'promtool checks of the example alert rules');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3_600_000;
const work = mkdtempSync(join(tmpdir(), 'certkeeper-promtool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function promtool(...args: string[]) {
  const run = spawnSync(tools!.promtool, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Samples of the Prometheus text format: `name{label="value",…} number`. */
function parseExposition(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of match[2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? [])
      labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The annotations of `alert` in the rules file, `{{ $labels.x }}` filled in. */
function annotations(alert: string, labels: Record<string, string>) {
  const rules = readFileSync(RULES, 'utf8');
  const block = rules.split('- alert: ').find((b) => b.startsWith(`${alert}\n`))!;
  const fill = (key: string) =>
    new RegExp(`${key}: "(.*)"`)
      .exec(block)![1]!
      .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, name: string) => labels[name] ?? '');
  return { summary: fill('summary'), description: fill('description') };
}

describe.skipIf(!tools)('example alert rules under promtool', () => {
  it('load (promtool check rules) and pass their own unit tests (promtool test rules)', () => {
    const check = promtool('check', 'rules', RULES);
    expect(check.output).toContain('SUCCESS: 5 rules found');
    expect(check.code).toBe(0);
    const test = promtool('test', 'rules', join(MONITORING, 'certkeeper-alerts.test.yml'));
    expect(test.output).toContain('SUCCESS');
    expect(test.code).toBe(0);
  });

  it("fire on the series certkeeper exports: an expired certificate under a FakeClock fires 'expiring' and 'expired'", async () => {
    // promtool's clock starts at 0: so does this manager's (plus an hour).
    const clock = new FakeClock(HOUR);
    const issuer = new SwitchableIssuer({ lifetimeMs: 24 * HOUR });
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      clock,
      certificates: [{ id: 'web', names: ['web.test'] }],
      logger: quiet,
      reconcileIntervalMs: 0,
    });
    const registry = new Registry();
    const collector = await createPrometheusCollector(manager, { registry, clock });
    try {
      await manager.start();
      await clock.advance(0);
      await manager.ready();
      issuer.fault = 'down';
      const notAfter = manager.status()[0]!.notAfter!.getTime();
      const failed = nextEvent(manager, 'renewalFailed', 15_000, () => clock.now() > notAfter);
      await clock.advance(notAfter - clock.now() + 2 * HOUR);
      await failed;
      expect(manager.status()[0]).toMatchObject({ state: 'expired' });
      const samples = parseExposition(await registry.metrics());
      const target = { job: 'app', instance: 'app:9464' };
      const evalMinutes = Math.floor(clock.now() / 60_000);
      const series = samples.map((s) => ({
        series: `${s.name}{${Object.entries({ ...s.labels, ...target })
          .map(([k, v]) => `${k}="${v}"`)
          .join(',')}}`,
        values: `${s.value}x${evalMinutes + 10}`,
      }));
      const labels = { id: 'web', issuer: issuer.id, ...target };
      const expect_ = (alertname: string, severity: string, fire: boolean) => ({
        eval_time: `${evalMinutes}m`,
        alertname,
        exp_alerts: fire
          ? [{ exp_labels: { severity, ...labels }, exp_annotations: annotations(alertname, labels) }]
          : [],
      });
      const testFile = (tests: object[]) => {
        const path = join(work, `generated-${Math.random().toString(36).slice(2)}.yml`);
        // JSON is YAML: promtool reads it as it is.
        writeFileSync(
          path,
          JSON.stringify({
            rule_files: [RULES],
            evaluation_interval: '1m',
            tests: [{ interval: '1m', input_series: series, alert_rule_test: tests }],
          }),
        );
        return path;
      };
      const fires = promtool(
        'test',
        'rules',
        testFile([
          expect_('CertkeeperCertificateExpiring', 'warning', true),
          expect_('CertkeeperCertificateExpired', 'critical', true),
          expect_('CertkeeperCertificateNotReady', 'critical', true),
        ]),
      );
      expect(fires.output).toContain('SUCCESS');
      expect(fires.code).toBe(0);
      // The same input, expecting silence: promtool must refuse it (the check above can fail).
      const silent = promtool(
        'test',
        'rules',
        testFile([expect_('CertkeeperCertificateExpiring', 'warning', false)]),
      );
      expect(silent.code).not.toBe(0);
      expect(silent.output).toContain('CertkeeperCertificateExpiring');
    } finally {
      collector.close();
      await manager.stop();
    }
  });
});
