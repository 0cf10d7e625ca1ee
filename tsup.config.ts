import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    // certkeeper/metrics: the prom-client and OpenTelemetry collectors (optional peers).
    'metrics/index': 'src/metrics/index.ts',
    // certkeeper/deploy: file-and-reload deploy targets for services that are not Node.
    'deploy/index': 'src/deploy/index.ts',
    // The `certkeeper` command (package.json `bin`).
    'cli/index': 'src/cli/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
});
