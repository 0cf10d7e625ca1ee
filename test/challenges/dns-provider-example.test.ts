// The example provider of docs/dns-providers.md, run as printed there (its code block, with the
// package's import paths pointed at the source entries) against a fake of the HTTP DNS API it is written for. The
// fake publishes its TXT records through pebble-challtestsrv's DNS, so Pebble validates a
// wildcard certificate through the example end to end.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dns01Solver, type DnsProvider } from '../../src/challenges/dns-01.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { entries } from '../../tsup.config.js';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'tok-3f9a1c77e2b84d0b9c41';

type ProviderClass = new (options: { baseUrl: string; token: string; ttl?: number }) => DnsProvider;

/** The code block between the example markers of the page, as a module. */
async function loadExample(): Promise<{ ExampleDnsProvider: ProviderClass; cleanup(): void }> {
  const page = readFileSync(join(root, 'docs/dns-providers.md'), 'utf8');
  const block = /<!-- example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- example:end -->/.exec(page)?.[1];
  if (!block) throw new Error('docs/dns-providers.md: no example block');
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-doc-example-'));
  const file = join(dir, 'example-dns-provider.ts');
  const entry = (path: string) => {
    const source = entries[path === 'certkeeper' ? 'index' : `${path.slice('certkeeper/'.length)}/index`];
    if (!source) throw new Error(`docs/dns-providers.md imports ${path}, which the package does not export`);
    return `from '${join(root, source)}'`;
  };
  writeFileSync(
    file,
    block.replaceAll(/from '(certkeeper(?:\/[\w-]+)?)'/g, (_, path: string) => entry(path)),
  );
  const module = (await import(file)) as { ExampleDnsProvider: ProviderClass };
  return { ExampleDnsProvider: module.ExampleDnsProvider, cleanup: () => rmSync(dir, { recursive: true }) };
}

interface FakeRecord {
  id: string;
  zone: string;
  name: string;
  content: string;
  ttl: number;
}

/**
 * The API the example is written for: zones, TXT records with ids, a bearer token. Every change
 * is published to challtestsrv (when given), where Pebble looks.
 */
async function startFakeDnsApi(challtestsrv?: string) {
  const zones = [
    { id: 'z-main', name: 'certkeeper.test' },
    { id: 'z-sub', name: 'sub.certkeeper.test' },
  ];
  const records = new Map<string, FakeRecord>();
  /** The most values a name ever had at once. */
  const peak = new Map<string, number>();
  let next = 1;
  const fqdn = (r: Pick<FakeRecord, 'zone' | 'name'>) => {
    const zone = zones.find((z) => z.id === r.zone)!.name;
    return r.name === '@' ? zone : `${r.name}.${zone}`;
  };
  const valuesAt = (name: string) =>
    [...records.values()].filter((r) => fqdn(r) === name).map((r) => r.content);
  const publish = async (name: string) => {
    const values = valuesAt(name);
    peak.set(name, Math.max(peak.get(name) ?? 0, values.length));
    if (!challtestsrv) return;
    const post = (path: string, body: unknown) =>
      fetch(`${challtestsrv}${path}`, { method: 'POST', body: JSON.stringify(body) }).then((r) =>
        r.arrayBuffer(),
      );
    await post('/clear-txt', { host: `${name}.` });
    for (const value of values) await post('/set-txt', { host: `${name}.`, value });
  };
  const server = http.createServer(async (req, res) => {
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: 'invalid API token' });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const parts = url.pathname.split('/').filter(Boolean); // v1 zones {zone} records {id}
    if (req.method === 'GET' && url.pathname === '/v1/zones') return send(200, zones);
    const zone = zones.find((z) => z.id === parts[2]);
    if (parts[0] !== 'v1' || parts[1] !== 'zones' || !zone || parts[3] !== 'records')
      return send(404, { error: 'no such resource' });
    if (req.method === 'POST' && parts.length === 4) {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<FakeRecord, 'id' | 'zone'> & {
        type: string;
      };
      if (body.type !== 'TXT' || typeof body.content !== 'string') return send(400, { error: 'TXT only' });
      const record = {
        id: `r${next++}`,
        zone: zone.id,
        name: body.name,
        content: body.content,
        ttl: body.ttl,
      };
      records.set(record.id, record);
      await publish(fqdn(record));
      return send(201, record);
    }
    if (req.method === 'GET' && parts.length === 4) {
      const name = url.searchParams.get('name');
      return send(
        200,
        [...records.values()].filter((r) => r.zone === zone.id && (name === null || r.name === name)),
      );
    }
    if (req.method === 'DELETE' && parts.length === 5) {
      const record = records.get(decodeURIComponent(parts[4]!));
      if (!record || record.zone !== zone.id) return send(404, { error: 'no such record' });
      records.delete(record.id);
      await publish(fqdn(record));
      return send(204);
    }
    return send(405, { error: 'method not allowed' });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    records,
    peak,
    valuesAt,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

let example: Awaited<ReturnType<typeof loadExample>>;
beforeAll(async () => {
  example = await loadExample();
});
afterAll(() => example?.cleanup());

describe('the example DNS provider of docs/dns-providers.md, against a fake HTTP DNS API', () => {
  it('adds values, removes exactly one, finds the deepest zone, and removing twice is fine', async () => {
    const api = await startFakeDnsApi();
    try {
      const provider = new example.ExampleDnsProvider({ baseUrl: api.url, token: TOKEN });
      const name = '_acme-challenge.www.certkeeper.test';
      await provider.setTxt(name, 'one');
      await provider.setTxt(name, 'two');
      expect(api.valuesAt(name).sort()).toEqual(['one', 'two']);
      await provider.removeTxt(name, 'one');
      expect(api.valuesAt(name)).toEqual(['two']);
      await provider.removeTxt(name, 'one');
      await provider.removeTxt(name, 'two');
      expect(api.records.size).toBe(0);

      await provider.setTxt('_acme-challenge.a.sub.certkeeper.test', 'deep');
      expect([...api.records.values()]).toMatchObject([{ zone: 'z-sub', name: '_acme-challenge.a' }]);
      await provider.removeTxt('_acme-challenge.a.sub.certkeeper.test', 'deep');
      await expect(provider.setTxt('_acme-challenge.other.test', 'x')).rejects.toMatchObject({
        code: 'CHALLENGE_FAILED',
        details: { retryable: false },
      });
    } finally {
      await api.close();
    }
  });

  it('a refused token fails without retrying blindly, and the token appears nowhere', async () => {
    const api = await startFakeDnsApi();
    try {
      const provider = new example.ExampleDnsProvider({ baseUrl: api.url, token: 'wrong-token-value' });
      const error = await provider.setTxt('_acme-challenge.certkeeper.test', 'x').catch((e: Error) => e);
      expect(error).toMatchObject({ code: 'CHALLENGE_FAILED', details: { status: 401, retryable: false } });
      expect((error as Error).message).toMatch(/401 invalid API token/);
      expect(JSON.stringify(error)).not.toContain('wrong-token-value');
    } finally {
      await api.close();
    }
  });
});

describePebble('the example DNS provider issues a wildcard certificate from Pebble', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' } });
  }, 30_000);
  afterAll(async () => {
    await pebble?.stop();
  });

  it('both values at once for a name and its wildcard; nothing left afterwards', async () => {
    const api = await startFakeDnsApi(pebble.challtestsrv.url);
    const issuer = new AcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      ca: pebble.caPem,
      agreeToTerms: true,
      trustAnchors: [await pebble.roots()],
      challenges: [
        new Dns01Solver({
          provider: new example.ExampleDnsProvider({ baseUrl: api.url, token: TOKEN }),
          // The fake publishes through challtestsrv, which is no zone's authoritative server.
          resolvers: [pebble.challtestsrv.dnsServer],
          pollIntervalMs: 50,
        }),
      ],
    });
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      logger: quiet,
      certificates: [{ id: 'wild', names: ['api.certkeeper.test', '*.api.certkeeper.test'] }],
    });
    try {
      await manager.start();
      await manager.ready();
      const leaf = parseCertificates(manager.certificate('wild')!.chainPem)[0]!;
      expect([...leaf.info.dnsNames].sort()).toEqual(['*.api.certkeeper.test', 'api.certkeeper.test']);
      expect(api.peak.get('_acme-challenge.api.certkeeper.test')).toBe(2);
      expect(api.records.size).toBe(0);
    } finally {
      await manager.stop();
      await issuer.close();
      await api.close();
    }
  });
});
