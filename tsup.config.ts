import { defineConfig } from 'tsup';

// One entry per package export (package.json "exports"; test/package/exports.test.ts checks the
// two lists agree), plus the command line.
export const entries: Record<string, string> = {
  index: 'src/index.ts',
  'acme/index': 'src/entries/acme.ts',
  'step-ca/index': 'src/entries/step-ca.ts',
  'stores/index': 'src/entries/stores.ts',
  'crypto/index': 'src/entries/crypto.ts',
  'grpc/index': 'src/entries/grpc.ts',
  'undici/index': 'src/entries/undici.ts',
  // certkeeper/metrics: the prom-client and OpenTelemetry collectors (optional peers).
  'metrics/index': 'src/metrics/index.ts',
  'testing/index': 'src/testing/index.ts',
};

export default defineConfig({
  entry: {
    ...entries,
    // The `certkeeper` command (package.json `bin`).
    'cli/index': 'src/cli/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  // No source maps in the package: the output is unminified with the original names, so stack
  // traces already point at readable code, and maps carrying their sources were two thirds of
  // the tarball (maps without their sources would point at files the package does not ship).
  sourcemap: false,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
});
