// examples/grpc-mtls.mjs: calls keep succeeding while both certificates rotate, every answer names
// a client certificate the manager issued for the caller (three at least), and a client without a
// certificate is refused by the server.
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { cleanup, exportRoot, hexSerial, requireBuild, startExample, tempDir } from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()),
};
const Greeter = grpc.makeGenericClientConstructor(
  {
    hello: {
      path: '/example.Greeter/Hello',
      requestStream: false,
      responseStream: false,
      requestSerialize: json.serialize,
      requestDeserialize: json.deserialize,
      responseSerialize: json.serialize,
      responseDeserialize: json.deserialize,
    },
  },
  'Greeter',
);

it('grpc-mtls.mjs: the rotating gRPC client presents the current client certificate, no call fails', {
  timeout: 120_000,
}, async () => {
  const store = tempDir('grpc');
  const example = startExample('grpc-mtls.mjs', {
    CERTKEEPER_DIR: store,
    LIFETIME_MS: '4000',
    INTERVAL_MS: '200',
  });
  const port = Number((await example.waitFor(/server listening on 127\.0\.0\.1:(\d+)/))[1]);
  await example.waitFor(
    /rotated caller: serial [0-9a-f]+\n[\s\S]*rotated caller: serial 0*([0-9a-f]+)\n[\s\S]*call \d+: hello caller\.svc\.internal, serial 0*\1\n/,
    90_000,
  );

  // Without a client certificate: refused.
  const root = await exportRoot(store);
  const anonymous = new Greeter(`localhost:${port}`, grpc.credentials.createSsl(Buffer.from(root)));
  const refused = await new Promise<grpc.ServiceError | null>((done) =>
    (
      anonymous as unknown as {
        hello(
          req: unknown,
          options: grpc.CallOptions,
          callback: (error: grpc.ServiceError | null) => void,
        ): void;
      }
    ).hello({}, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null) => done(error)),
  );
  anonymous.close();
  expect(refused?.code).toBe(grpc.status.UNAVAILABLE);

  const { code } = await example.stop();
  expect(code).toBe(0);
  const out = example.output();
  const issued = new Set(
    [...out.matchAll(/rotated caller: serial ([0-9a-f]+)/g)].map((m) => hexSerial(m[1]!)),
  );
  const seen = new Set(
    [...out.matchAll(/call \d+: hello caller\.svc\.internal, serial ([0-9a-f]+)/g)].map((m) =>
      hexSerial(m[1]!),
    ),
  );
  const first = hexSerial(/call 1: hello caller\.svc\.internal, serial ([0-9a-f]+)/.exec(out)![1]!);
  expect([...seen].filter((s) => s !== first && !issued.has(s))).toEqual([]);
  expect(seen.size).toBeGreaterThanOrEqual(3);
  expect(out).not.toMatch(/call \d+ failed/);
  expect(out).toMatch(/\d+ calls, 0 failed/);
});
