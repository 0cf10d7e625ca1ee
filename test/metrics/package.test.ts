// certkeeper/metrics as published: the built entry resolves by name through the exports map in
// ESM and CJS, and loading it loads neither optional peer (prom-client, @opentelemetry/api)
// until a collector is created.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' }).trim();

describe('certkeeper/metrics (built)', () => {
  it('requires through CJS without loading prom-client or @opentelemetry/api', () => {
    const out = node([
      '-e',
      `const m = require('certkeeper/metrics');
       const peers = Object.keys(require.cache).filter((k) => /prom-client|@opentelemetry/.test(k));
       console.log(JSON.stringify({ prom: typeof m.createPrometheusCollector, otel: typeof m.createOpenTelemetryMetrics, peers }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ prom: 'function', otel: 'function', peers: [] });
  });

  it('imports through ESM; a collector loads prom-client on creation', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import { createCertificateManager, MemoryStore } from 'certkeeper';
       import { createPrometheusCollector, METRICS } from 'certkeeper/metrics';
       const manager = createCertificateManager({ store: new MemoryStore(), certificates: [{ names: ['a.test'] }] });
       const collector = await createPrometheusCollector(manager);
       const text = await collector.registry.metrics();
       console.log(JSON.stringify({ names: Object.keys(METRICS).length, missing: text.includes('certkeeper_certificates{state="missing"} 1') }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ names: 14, missing: true });
  });
});
