// The real-ACME test harness itself: Pebble and challtestsrv start on free ports and answer as
// configured, and the proxy in front adds ARI, profiles and faults while passing the rest through.
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import { promises as dns } from 'node:dns';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeProxy, certIdOf, type NewOrderRecord, startAcmeProxy } from '../support/acme-proxy.js';
import { describePebble, type Pebble, pebbleAvailable, startPebble } from '../support/pebble.js';
import { dns01Value, MiniAcme, request } from './mini-acme.js';

const ACME = 'urn:ietf:params:acme:error:';
// Pebble rejects 5 % of nonces by default; the client retries, and the proxy records every try.
const answered = (o: NewOrderRecord) => o.problem !== `${ACME}badNonce`;

function resolver(pebble: Pebble): dns.Resolver {
  const r = new dns.Resolver({ timeout: 1_000, tries: 1 });
  r.setServers([pebble.challtestsrv.dnsServer]);
  return r;
}

describe('certIdOf', () => {
  it('matches the RFC 9773 example, leading 00 of the serial included', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: '0087654321',
        name: 'CN=ari example',
        keys,
        signingAlgorithm: alg,
        extensions: [new x509.AuthorityKeyIdentifierExtension('69885b6b87464041e1b37b847ba0ae2cde01c8d4')],
      },
      webcrypto,
    );
    expect(certIdOf(cert.toString('pem'))).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });
});

describe('pebbleAvailable / startPebble without Pebble', () => {
  it('reports absence and fails with the install hint', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(pebbleAvailable()).toBe(false);
      await expect(startPebble()).rejects.toThrow(/apt-get install -y pebble/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describePebble('Pebble harness', () => {
  let pebble: Pebble;
  let proxy: AcmeProxy;
  let startedInMs: number;
  const profiles = { classic: 'https://ca.test/classic', shortlived: 'https://ca.test/shortlived' };

  beforeAll(async () => {
    const t0 = performance.now();
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0' } });
    startedInMs = performance.now() - t0;
    proxy = await startAcmeProxy({ upstream: pebble, renewalInfo: true, profiles });
  });
  afterAll(async () => {
    await proxy?.close();
    await pebble?.stop();
  });

  it('starts on free loopback ports and serves its directory over HTTPS trusted by caPem', async () => {
    console.info(`Pebble + challtestsrv answered after ${startedInMs.toFixed(0)} ms`);
    expect(pebble.directoryUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/dir$/);
    const dir = await request(pebble.directoryUrl, pebble.caPem);
    expect(dir.status).toBe(200);
    expect(Object.keys(dir.json)).toEqual(
      expect.arrayContaining(['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange']),
    );
    // Pebble 2.4.0 has no ARI and no profiles: the proxy exists for those.
    expect(dir.json.renewalInfo).toBeUndefined();
    expect((dir.json.meta as Record<string, unknown>).profiles).toBeUndefined();
    await expect(request(pebble.directoryUrl, '')).rejects.toThrow(); // not publicly trusted
  });

  it('hands out its issuing root and intermediate', async () => {
    const root = new x509.X509Certificate(await pebble.roots());
    const intermediate = new x509.X509Certificate(await pebble.intermediates());
    expect(root.subject).toMatch(/Pebble Root CA/);
    expect(intermediate.issuer).toBe(root.subject);
    expect(await intermediate.verify({ publicKey: root.publicKey, signatureOnly: true }, webcrypto)).toBe(
      true,
    );
    expect(await pebble.certStatus('abcdef')).toBeNull();
  });

  it('challtestsrv: TXT records resolve through its DNS port; every other name is 127.0.0.1, no AAAA', async () => {
    const r = resolver(pebble);
    await pebble.challtestsrv.setTxt('_acme-challenge.a.test', 'value-1');
    expect(await r.resolveTxt('_acme-challenge.a.test')).toEqual([['value-1']]);
    await pebble.challtestsrv.clearTxt('_acme-challenge.a.test');
    await expect(r.resolveTxt('_acme-challenge.a.test')).rejects.toMatchObject({ code: 'ENODATA' });
    // The default A answer is what points test names at loopback; addA is for other addresses.
    expect(await r.resolve4('anything.test')).toEqual(['127.0.0.1']);
    await expect(r.resolve6('anything.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await pebble.challtestsrv.addA('elsewhere.test', '10.9.8.7');
    expect(await r.resolve4('elsewhere.test')).toEqual(['10.9.8.7']);
    await pebble.challtestsrv.clearA('elsewhere.test');
    expect(await r.resolve4('elsewhere.test')).toEqual(['127.0.0.1']);
    // Node's resolver asks over UDP; DNS falls back to TCP on truncation, so that port listens too.
    const [host, port] = pebble.challtestsrv.dnsServer.split(':');
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), host, () => {
        socket.end();
        resolve();
      });
      socket.on('error', reject);
    });
  });

  it('proxy: directory URLs point at the proxy, with renewalInfo and meta.profiles added', async () => {
    const dir = await request(proxy.directoryUrl, proxy.caPem);
    expect(dir.status).toBe(200);
    for (const [name, value] of Object.entries(dir.json)) {
      if (typeof value === 'string') expect(value, name).toMatch(new RegExp(`^${proxy.url}/`));
    }
    expect(dir.json.renewalInfo).toBe(`${proxy.url}/renewal-info`);
    expect(dir.json.meta).toMatchObject({ profiles, termsOfService: expect.any(String) });
  });

  it('proxy: HEAD newNonce passes through with Replay-Nonce and a Link to the proxy', async () => {
    const dir = (await request(proxy.directoryUrl, proxy.caPem)).json as Record<string, string>;
    const answer = await request(dir.newNonce!, proxy.caPem, 'HEAD');
    expect(answer.status).toBe(200);
    expect(answer.headers['replay-nonce']).toMatch(/^[\w-]+$/);
    expect(answer.headers.link).toBe(`<${proxy.url}/dir>;rel="index"`);
  });

  it('proxy: injected 429 / 503 carry Retry-After and a nonce, then requests pass; times are recorded', async () => {
    proxy.reset();
    const dir = (await request(proxy.directoryUrl, proxy.caPem)).json as Record<string, string>;
    proxy.inject('newNonce', { kind: 'rateLimited', retryAfterSeconds: 7 }, 2);
    proxy.inject(/^\/nonce-plz$/, { kind: 'unavailable', retryAfterSeconds: null });
    const first = await request(dir.newNonce!, proxy.caPem);
    expect(first.status).toBe(429);
    expect(first.headers['content-type']).toBe('application/problem+json');
    expect(first.headers['retry-after']).toBe('7');
    expect(first.headers['replay-nonce']).toBeTruthy();
    expect(first.json).toMatchObject({ type: `${ACME}rateLimited`, status: 429 });
    expect((await request(dir.newNonce!, proxy.caPem)).status).toBe(429);
    const third = await request(dir.newNonce!, proxy.caPem);
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBeUndefined();
    expect((await request(dir.newNonce!, proxy.caPem, 'HEAD')).status).toBe(200);
    expect(proxy.timesOf('newNonce')).toHaveLength(4);
    expect(proxy.requests.filter((r) => r.route === 'newNonce').map((r) => r.status)).toEqual([
      429, 429, 503, 200,
    ]);

    proxy.inject('directory', { kind: 'html' });
    proxy.inject('directory', { kind: 'truncated' });
    const html = await request(proxy.directoryUrl, proxy.caPem);
    expect([html.status, html.headers['content-type'], html.text]).toEqual([
      200,
      'text/html',
      expect.stringContaining('<html>'),
    ]);
    const truncated = await request(proxy.directoryUrl, proxy.caPem);
    expect(truncated.status).toBe(200);
    expect(() => JSON.parse(truncated.text)).toThrow();
    proxy.inject('directory', { kind: 'reset' });
    await expect(request(proxy.directoryUrl, proxy.caPem)).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it('issues through the proxy (DNS-01): POST-as-GET passes, replaces and profile are recorded and accepted', async () => {
    proxy.reset();
    const client = await new MiniAcme(proxy.directoryUrl, proxy.caPem).init();
    const account = await client.register();
    expect(account.status).toBe(201);
    expect(client.kid).toMatch(new RegExp(`^${proxy.url}/my-account/`));
    const again = await client.post(client.kid!); // POST-as-GET
    expect(again.status).toBe(200);
    expect(again.json.status).toBe('valid');

    const solve = (_token: string, keyAuthorization: string, name: string) =>
      pebble.challtestsrv.setTxt(`_acme-challenge.${name}`, dns01Value(keyAuthorization));
    const first = await client.issue(['one.test'], 'dns-01', solve, { profile: 'shortlived' });
    expect(first.order.headers.location).toMatch(new RegExp(`^${proxy.url}/my-order/`));
    expect(first.order.json.profile).toBe('shortlived'); // echoed by the proxy
    const id = certIdOf(first.chainPem);

    // Pebble 2.4.0 ignores fields it does not know, so a forwarded `replaces` is accepted.
    const second = await client.issue(['one.test'], 'dns-01', solve, { replaces: id });
    expect(
      proxy.orders.filter(answered).map(({ replaces, profile, status }) => ({ replaces, profile, status })),
    ).toEqual([
      { replaces: undefined, profile: 'shortlived', status: 201 },
      { replaces: id, profile: undefined, status: 201 },
    ]);
    const serial = new x509.X509Certificate(second.chainPem).serialNumber;
    expect(await pebble.certStatus(serial)).toMatchObject({ Status: 'Valid' });

    // An unadvertised profile is refused, as a CA with profiles would.
    const bad = await client.post(client.directory.newOrder!, {
      identifiers: [{ type: 'dns', value: 'one.test' }],
      profile: 'nonesuch',
    });
    expect([bad.status, bad.json.type]).toEqual([400, `${ACME}invalidProfile`]);
  });

  it('rejects an order carrying replaces once with the given problem, with a Replay-Nonce', async () => {
    proxy.reset();
    const client = await new MiniAcme(proxy.directoryUrl, proxy.caPem).init();
    await client.register();
    proxy.rejectReplaces();
    const order = { identifiers: [{ type: 'dns', value: 'two.test' }], replaces: 'AAAA.AQ' };
    const rejected = await client.post(client.directory.newOrder!, order);
    expect([rejected.status, rejected.json.type]).toEqual([409, `${ACME}alreadyReplaced`]);
    expect(rejected.headers['replay-nonce']).toBeTruthy();
    const retried = await client.post(client.directory.newOrder!, order);
    expect(retried.status).toBe(201);
    expect(proxy.orders.filter(answered).map((o) => o.rejectedWith)).toEqual([
      `${ACME}alreadyReplaced`,
      undefined,
    ]);
  });

  it('answers ARI: set windows, the default window of an issued certificate, 404 and 400 otherwise', async () => {
    proxy.reset();
    const client = await new MiniAcme(proxy.directoryUrl, proxy.caPem).init();
    await client.register();
    const { chainPem } = await client.issue(['ari.test'], 'dns-01', (_t, keyAuthorization, name) =>
      pebble.challtestsrv.setTxt(`_acme-challenge.${name}`, dns01Value(keyAuthorization)),
    );
    const cert = new x509.X509Certificate(chainPem);
    const id = certIdOf(chainPem);
    // The certID's halves, cross-checked: the issuer's key id, and the serial as Node reads it.
    const issuer = new x509.X509Certificate(await pebble.intermediates());
    const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(id.split('.')[0]).toBe(Buffer.from(ski, 'hex').toString('base64url'));
    const serialBytes = Buffer.from(id.split('.')[1]!, 'base64url');
    expect(serialBytes[0]! & 0x80).toBe(0); // a positive INTEGER's content bytes
    expect(BigInt(`0x${serialBytes.toString('hex')}`)).toBe(
      BigInt(`0x${new X509Certificate(chainPem).serialNumber}`),
    );
    const ari = (certId: string) => request(`${proxy.url}/renewal-info/${certId}`, proxy.caPem);

    const byDefault = await ari(id);
    expect(byDefault.status).toBe(200);
    expect(byDefault.headers['retry-after']).toBe('21600');
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    const window = byDefault.json.suggestedWindow as { start: string; end: string };
    expect(Date.parse(window.start)).toBeCloseTo(cert.notBefore.getTime() + (lifetime * 2) / 3, -3);
    expect(Date.parse(window.end)).toBeCloseTo(cert.notBefore.getTime() + (lifetime * 3) / 4, -3);

    proxy.setWindow(id, {
      start: '2030-01-01T00:00:00Z',
      end: '2030-01-02T00:00:00Z',
      explanationURL: 'https://ca.test/why',
      retryAfterSeconds: 60,
    });
    const set = await ari(id);
    expect(set.json).toEqual({
      suggestedWindow: { start: '2030-01-01T00:00:00.000Z', end: '2030-01-02T00:00:00.000Z' },
      explanationURL: 'https://ca.test/why',
    });
    expect(set.headers['retry-after']).toBe('60');

    // Right serial, wrong issuer key: unknown, like a real CA.
    const [, serialPart] = id.split('.');
    expect((await ari(`AAAA.${serialPart}`)).status).toBe(404);
    expect((await ari('not-a-cert-id')).status).toBe(400);
    expect(proxy.renewalInfoRequests).toEqual([id, id, `AAAA.${serialPart}`, 'not-a-cert-id']);
  });

  it('HTTP-01: Pebble validates against a server on httpPort at the default 127.0.0.1 answer', async () => {
    const seen: string[] = [];
    const answers = new Map<string, string>();
    const server = http.createServer((req, res) => {
      seen.push(req.url!);
      const token = req.url!.split('/').pop()!;
      res.end(answers.get(token) ?? '');
    });
    await new Promise<void>((resolve) => server.listen(pebble.httpPort, '127.0.0.1', resolve));
    try {
      expect((server.address() as AddressInfo).port).toBe(pebble.httpPort);
      const client = await new MiniAcme(pebble.directoryUrl, pebble.caPem).init();
      await client.register();
      await client.issue(['web.test'], 'http-01', async (token, keyAuthorization) => {
        answers.set(token, keyAuthorization);
      });
      // The VA makes several concurrent attempts; every one must get the answer.
      console.info(`HTTP-01: ${seen.length} validation request(s)`);
      expect(seen.length).toBeGreaterThanOrEqual(1);
      expect(new Set(seen).size).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('down() refuses connections; restart() serves the same URL with a new root and no state', async () => {
    const client = await new MiniAcme(pebble.directoryUrl, pebble.caPem).init();
    await client.register();
    const rootBefore = await pebble.roots();
    await pebble.down();
    await expect(request(pebble.directoryUrl, pebble.caPem)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(request(proxy.directoryUrl, proxy.caPem)).rejects.toThrow(/socket hang up|ECONNRESET/);
    await pebble.restart();
    expect((await request(pebble.directoryUrl, pebble.caPem)).status).toBe(200);
    expect(await pebble.roots()).not.toBe(rootBefore);
    const forgotten = await client.post(client.kid!);
    expect(forgotten.json.type).toBe(`${ACME}accountDoesNotExist`);
    expect(pebble.logs()).toMatch(/restarting Pebble[\s\S]*Starting Pebble ACME server/);
  });
});

describePebble('Pebble options', () => {
  let pebble: Pebble;
  const hmacKey = Buffer.from('a 32-byte secret for EAB tests!!').toString('base64url');

  beforeAll(async () => {
    pebble = await startPebble({
      eab: { 'kid-1': hmacKey },
      validityPeriodSeconds: 3_600,
      env: { PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_CHAIN_LENGTH: '2' },
    });
  });
  afterAll(async () => {
    await pebble?.stop();
  });

  it('requires EAB when given keys, and issues certificates of the configured validity', async () => {
    const dir = await request(pebble.directoryUrl, pebble.caPem);
    expect((dir.json.meta as Record<string, unknown>).externalAccountRequired).toBe(true);
    const anonymous = await new MiniAcme(pebble.directoryUrl, pebble.caPem).init();
    expect((await anonymous.register()).json.type).toBe(`${ACME}externalAccountRequired`);

    const client = await new MiniAcme(pebble.directoryUrl, pebble.caPem).init();
    expect((await client.register({ kid: 'kid-1', hmacKey })).status).toBe(201);
    const { chainPem } = await client.issue(['eab.test'], 'dns-01', (_t, keyAuthorization, name) =>
      pebble.challtestsrv.setTxt(`_acme-challenge.${name}`, dns01Value(keyAuthorization)),
    );
    const chain = chainPem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(chain).toHaveLength(3); // leaf + PEBBLE_CHAIN_LENGTH intermediates
    const leaf = new x509.X509Certificate(chainPem);
    const lifetimeS = (leaf.notAfter.getTime() - leaf.notBefore.getTime()) / 1000;
    expect(Math.abs(lifetimeS - 3_600)).toBeLessThanOrEqual(1);
  });

  it('fails with the output of Pebble when it cannot start', async () => {
    const dir = new URL(pebble.directoryUrl);
    await expect(startPebble({ ports: { acme: Number(dir.port) }, startTimeoutMs: 3_000 })).rejects.toThrow(
      /address already in use/,
    );
  });
});
