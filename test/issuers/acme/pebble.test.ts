// certkeeper against a real ACME server (Pebble 2.4.0), with Pebble's default 5 % nonce
// rejection left on and authorization reuse off, so every order validates every challenge.
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Dns01Solver, type DnsProvider } from '../../../src/challenges/dns-01.js';
import { systemClock } from '../../../src/clock.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { silentLogger } from '../../../src/logger.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { nextEvent } from '../../support/events.js';
import { describePebble, type Pebble, startPebble } from '../../support/pebble.js';
import { fetchOk, type Rig, rig } from './support.js';

let pebble: Pebble;
let root: string;
const rigs: Rig[] = [];

describePebble('ACME issuer against Pebble', () => {
  beforeAll(async () => {
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0' }, validityPeriodSeconds: 12 });
    root = await pebble.roots();
  }, 30_000);
  afterAll(async () => {
    await pebble?.stop();
  });
  afterEach(async () => {
    for (const r of rigs.splice(0)) await r.close();
  });

  async function up(options: Parameters<typeof rig>[1]) {
    const r = await rig(pebble, options);
    rigs.push(r);
    await r.manager.start();
    await r.manager.ready();
    return r;
  }

  it('HTTP-01: obtains, serves a chain Pebble’s root verifies, renews by itself and hot-swaps with no failed request', async () => {
    const r = await up({ names: ['web.certkeeper.test'], challenges: ['http-01'] });
    const first = r.manager.status()[0]!;
    expect(first.issuer).toBe(pebble.directoryUrl);
    // 12-second certificates renew at about 8 s; a verifying client calls throughout.
    const renewed = nextEvent(r.manager, 'renewed', 20_000);
    let ok = 0;
    let failed = 0;
    const serials = new Set<string>();
    let done = false;
    void renewed.finally(() => {
      done = true;
    });
    const deadline = Date.now() + 20_000;
    while (!done && Date.now() < deadline) {
      try {
        const res = await fetchOk(pebble.tlsPort, 'web.certkeeper.test', root);
        if (res.status === 200) ok++;
        else failed++;
        serials.add(res.serial);
      } catch {
        failed++;
      }
    }
    await renewed;
    for (let i = 0; i < 5; i++)
      serials.add((await fetchOk(pebble.tlsPort, 'web.certkeeper.test', root)).serial);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(10);
    expect(serials.size).toBe(2);
    expect(r.manager.status()[0]!.serial).not.toBe(first.serial);
  }, 40_000);

  it('TLS-ALPN-01 on the https server that serves traffic; answers are removed afterwards', async () => {
    const r = await up({ names: ['alpn.certkeeper.test'], challenges: ['tls-alpn-01'] });
    const served = await fetchOk(pebble.tlsPort, 'alpn.certkeeper.test', root);
    expect(served).toMatchObject({ status: 200, serial: r.manager.status()[0]!.serial });
    expect(r.events.filter((e) => e.name === 'renewalFailed')).toEqual([]);
    expect(await r.store.list('challenges')).toEqual([]);
  });

  it.each(['http-01', 'tls-alpn-01'] as const)('IP identifiers through %s (RFC 8738)', async (type) => {
    const r = await up({ names: [`ip-${type}.certkeeper.test`, '127.0.0.1'], challenges: [type] });
    const status = r.manager.status()[0]!;
    expect(status.names).toContain('127.0.0.1');
    expect(await r.store.list('challenges')).toEqual([]);
    const { X509Certificate } = await import('node:crypto');
    expect(new X509Certificate(r.manager.certificate('web')!.chainPem).subjectAltName).toContain(
      'IP Address:127.0.0.1',
    );
  });

  it('TLS-ALPN-01 on an http2 server, which still speaks h2 to ordinary clients', async () => {
    const r = await up({ names: ['h2.certkeeper.test'], challenges: ['tls-alpn-01'], kind: 'http2' });
    await r.manager.renewNow('web');
    const { connect } = await import('node:http2');
    const session = connect(`https://127.0.0.1:${pebble.tlsPort}`, {
      servername: 'h2.certkeeper.test',
      ca: root,
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/', ':authority': 'h2.certkeeper.test' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect((session.socket as unknown as { alpnProtocol: string }).alpnProtocol).toBe('h2');
    session.close();
  });

  it('DNS-01: a wildcard certificate with its base name', async () => {
    const r = await up({ names: ['*.wild.certkeeper.test', 'wild.certkeeper.test'], challenges: ['dns-01'] });
    const status = r.manager.status()[0]!;
    expect(status.names).toEqual(['*.wild.certkeeper.test', 'wild.certkeeper.test']);
    expect((await fetchOk(pebble.tlsPort, 'any.wild.certkeeper.test', root)).serial).toBe(status.serial);
    expect((await fetchOk(pebble.tlsPort, 'wild.certkeeper.test', root)).serial).toBe(status.serial);
  });

  it('revokes with a reason code, visible in Pebble’s certificate status', async () => {
    const r = await up({ names: ['revoke.certkeeper.test'], challenges: ['http-01'] });
    const serial = r.manager.status()[0]!.serial!;
    await r.manager.revoke('web', 'keyCompromise');
    const status = await pebble.certStatus(serial);
    expect(status).toMatchObject({ Status: 'Revoked', Reason: 1 });
    expect(r.manager.status()[0]!.serial).not.toBe(serial);
  });

  it('a failing challenge makes the order invalid; the next attempt falls back and succeeds', async () => {
    let refuse = true;
    const r = await up({
      names: ['flaky.certkeeper.test'],
      challenges: ['http-01', 'tls-alpn-01'],
      httpHandler: (handler) => (req, res) => {
        if (refuse && handler.matches(req)) {
          res.writeHead(404).end();
          return;
        }
        handler(req, res);
      },
    });
    // The first order used http-01 (preferred) and failed; the lifecycle retried on its own.
    const failures = r.events.filter((e) => e.name === 'renewalFailed');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect((failures[0]!.payload.error as { code: string }).code).toBe('CHALLENGE_FAILED');
    expect(r.manager.status()[0]!.state).toBe('valid');
    refuse = false;
    expect((await fetchOk(pebble.tlsPort, 'flaky.certkeeper.test', root)).status).toBe(200);
  }, 30_000);

  it('a DNS provider error holding an inspected key Buffer reaches no event, status or log as hex', async () => {
    const der = (await PrivateKey.generate()).keyObject.export({ type: 'pkcs8', format: 'der' });
    // What a foreign library's error looks like when it printed the bytes it was handling.
    const leak = () => new Error(`provider rejected ${inspect(der)} / ${inspect(new Uint8Array(der))}`);
    const provider: DnsProvider = {
      setTxt: async () => {
        throw leak();
      },
      removeTxt: async () => {
        throw leak();
      },
    };
    const lines: string[] = [];
    const capture = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      void lines.push(
        `${level} ${message} ${inspect(fields ?? {}, { depth: 8 })} ${JSON.stringify(fields ?? {})}`,
      );
    const logger = {
      debug: capture('debug'),
      info: capture('info'),
      warn: capture('warn'),
      error: capture('error'),
    };
    const r = await rig(pebble, {
      names: ['leak.certkeeper.test'],
      challenges: [],
      issuer: { challenges: [new Dns01Solver({ provider, skipPropagationCheck: true })] },
      manager: { logger, renewal: { retryMinMs: 60_000 } },
    });
    rigs.push(r);
    const failed = nextEvent(r.manager, 'renewalFailed', 15_000);
    await r.manager.start();
    const event = await failed;
    // The secret part of a PKCS#8 EC key starts after its 36-byte header; inspect shows 50 bytes.
    const hex = (from: number, to: number) => der.subarray(from, to).toString('hex').match(/../g)!.join(' ');
    const decimal = [...der.subarray(36, 42)].join(', ');
    const surfaces = [
      inspect(event, { depth: 8 }),
      JSON.stringify(event),
      inspect(r.manager.status(), { depth: 8 }),
      JSON.stringify(r.manager.status()),
      ...lines,
    ];
    expect(lines.some((l) => l.includes('challenge cleanup failed'))).toBe(true);
    for (const surface of surfaces) {
      expect(surface).not.toContain(hex(36, 44));
      expect(surface).not.toContain(hex(0, 8));
      expect(surface).not.toContain(decimal);
    }
    expect(event.error.message).toContain('<Buffer [redacted]>');
  });

  it('keeps the account across restarts and replicas sharing the store', async () => {
    const store = new MemoryStore();
    const a = await up({ names: ['acct.certkeeper.test'], challenges: ['http-01'], store });
    const context = { store, clock: systemClock, logger: silentLogger, signal: new AbortController().signal };
    const url = await a.issuer.accountUrl(context);
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
    await a.close();
    rigs.splice(rigs.indexOf(a), 1);
    const b = await up({ names: ['acct.certkeeper.test'], challenges: ['http-01'], store });
    await b.manager.renewNow('web');
    expect(await b.issuer.accountUrl(context)).toBe(url);
  });

  it('rolls the account key over and keeps issuing with the same account', async () => {
    const r = await up({ names: ['roll.certkeeper.test'], challenges: ['http-01'] });
    const context = {
      store: r.store,
      clock: systemClock,
      logger: silentLogger,
      signal: new AbortController().signal,
    };
    const url = await r.issuer.accountUrl(context);
    const keyBefore = Buffer.from(
      (await r.store.get(`${(await r.store.list('accounts')).find((k) => k.endsWith('key.pem'))}`))!,
    ).toString();
    await r.issuer.rolloverAccountKey(context);
    const keyAfter = Buffer.from(
      (await r.store.get(`${(await r.store.list('accounts')).find((k) => k.endsWith('key.pem'))}`))!,
    ).toString();
    expect(keyAfter).not.toBe(keyBefore);
    await r.manager.renewNow('web');
    expect(r.manager.status()[0]!.lastError).toBeNull();
    expect(await r.issuer.accountUrl(context)).toBe(url);
  });

  it('Pebble stopped during renewal: the certificate is kept, and renewed (new account) once Pebble is back', async () => {
    const r = await up({ names: ['down.certkeeper.test'], challenges: ['http-01'], noAnchors: true });
    const serial = r.manager.status()[0]!.serial!;
    await pebble.down();
    const failed = nextEvent(r.manager, 'renewalFailed');
    const renewal = r.manager.renewNow('web');
    expect((await failed).error.code).toBe('ISSUER_UNAVAILABLE');
    await expect(renewal).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    expect(
      (await fetchOk(pebble.tlsPort, 'down.certkeeper.test', root).catch(() => null))?.serial ?? serial,
    ).toBe(serial);
    // A restarted Pebble knows no accounts: the issuer registers again by itself.
    await pebble.restart();
    root = await pebble.roots();
    await r.manager.renewNow('web');
    const status = r.manager.status()[0]!;
    expect(status.serial).not.toBe(serial);
    expect(status.lastError).toBeNull();
    expect((await fetchOk(pebble.tlsPort, 'down.certkeeper.test', root)).serial).toBe(status.serial);
  }, 30_000);
});
