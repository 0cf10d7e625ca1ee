// The live check against real TLS servers in this process: retrying within its bound, the SNI
// it presents, what a failure reports, and a PostgreSQL-protocol server that refuses TLS.
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeployableGeneration } from '../../../src/deploy/target.js';
import { checkLive, validateEndpoint } from '../../../src/deploy/verify/live-check.js';
import { testCa } from '../../support/peers/generations.js';
import { eventually } from '../../support/services.js';

const ca = testCa('verify');
const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});
const signal = () => AbortSignal.timeout(30_000);

async function tlsServer(generation: DeployableGeneration, onName?: (name: string | undefined) => void) {
  const server = tls.createServer({ key: generation.key.toPem(), cert: generation.chainPem }, (s) => s.end());
  server.on('tlsClientError', () => {});
  if (onName)
    server.on('secureConnection', (s) => onName((s as tls.TLSSocket & { servername?: string }).servername));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return { server, port: (server.address() as net.AddressInfo).port };
}

describe('checkLive', () => {
  it('retries until the endpoint serves the expected certificate', async () => {
    const [old, next] = [await ca.issue(), await ca.issue()];
    const { server, port } = await tlsServer(old);
    setTimeout(() => server.setSecureContext({ key: next.key.toPem(), cert: next.chainPem }), 600);
    const check = await checkLive(
      't',
      { host: '127.0.0.1', port },
      next.info.fingerprint256,
      ['localhost'],
      signal(),
    );
    expect(check).toEqual({
      target: 't',
      endpoint: `127.0.0.1:${port}`,
      fingerprint256: next.info.fingerprint256,
    });
  });

  it('presents the certificate`s first DNS name as SNI unless told otherwise', async () => {
    const generation = await ca.issue(['app.internal.test', 'localhost']);
    const names: (string | undefined)[] = [];
    const { port } = await tlsServer(generation, (n) => names.push(n));
    const expected = generation.info.fingerprint256;
    await checkLive('t', { host: '127.0.0.1', port }, expected, generation.info.dnsNames, signal());
    await checkLive(
      't',
      { host: '127.0.0.1', port, servername: 'other.test' },
      expected,
      generation.info.dnsNames,
      signal(),
    );
    // The server side reports a connection after the client has its answer.
    expect(await eventually(() => names.length === 2, 5_000)).toBe(true);
    expect(names).toEqual(['app.internal.test', 'other.test']);
  });

  it('LIVE_VERIFY_FAILED after its bound, naming what was served', async () => {
    const [old, next] = [await ca.issue(), await ca.issue()];
    const { port } = await tlsServer(old);
    const error = await checkLive(
      'nginx',
      { host: '127.0.0.1', port, timeoutMs: 800 },
      next.info.fingerprint256,
      [],
      signal(),
    ).catch((e) => e);
    expect(error).toMatchObject({
      code: 'LIVE_VERIFY_FAILED',
      details: { target: 'nginx', expected: next.info.fingerprint256, served: old.info.fingerprint256 },
    });
    expect(error.details.attempts).toBeGreaterThan(1);
  });

  it('a PostgreSQL server answering N to SSLRequest fails the check with that reason', async () => {
    const server = net.createServer((socket) => socket.once('data', () => socket.end('N')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const error = await checkLive(
      'pg',
      { host: '127.0.0.1', port, protocol: 'postgres', timeoutMs: 500 },
      'ab'.repeat(32),
      [],
      signal(),
    ).catch((e) => e);
    expect(error).toMatchObject({ code: 'LIVE_VERIFY_FAILED', details: { served: null } });
    expect(error.details.reason).toContain('ssl is off');
  });

  it('validates endpoints once', () => {
    const bad = [
      [{ host: '', port: 1 }, 'v.host'],
      [{ host: 'h', port: 70000 }, 'v.port'],
      [{ host: 'h', port: 1, protocol: 'smtp' }, 'v.protocol'],
      [{ host: 'h', port: 1, timeoutMs: -1 }, 'v.timeoutMs'],
    ] as const;
    for (const [endpoint, option] of bad) {
      expect(() => validateEndpoint(endpoint as never, 'v', 'fileTarget')).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', details: { option } }),
      );
    }
  });
});
