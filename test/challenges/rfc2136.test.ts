// DNS-01 against a real DNS server: the RFC 2136 provider (dynamic updates signed with TSIG) and
// the propagation check that asks the zone's authoritative servers, against BIND 9 (a primary
// and a secondary that follows it by NOTIFY and zone transfer), and the whole DNS-01 path with
// Pebble resolving through that BIND.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dns01Solver } from '../../src/challenges/dns-01.js';
import { decodeMessage, encodeMessage } from '../../src/challenges/providers/dns-wire.js';
import { Rfc2136Provider } from '../../src/challenges/providers/rfc2136.js';
import type { ChallengeTask } from '../../src/challenges/solver.js';
import { systemClock } from '../../src/clock.js';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { AcmeIssuer } from '../../src/issuers/acme/acme-issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { type BindZone, describeBind, startBindZone } from '../support/bind.js';
import { pebbleAvailable, startPebble } from '../support/pebble.js';

let dns: BindZone;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function provider(overrides: Partial<ConstructorParameters<typeof Rfc2136Provider>[0]> = {}) {
  return new Rfc2136Provider({ server: dns.primary.server, tsig: dns.tsig, ...overrides });
}

/** A DNS-01 task for `name` whose record value is fresh. */
function task(name: string): ChallengeTask {
  return {
    type: 'dns-01',
    identifier: { type: 'dns', value: name },
    wildcard: false,
    token: randomBytes(16).toString('base64url'),
    keyAuthorization: randomBytes(32).toString('base64url'),
  };
}

describeBind('RFC 2136 dynamic updates with TSIG, against BIND 9', () => {
  beforeAll(async () => {
    dns = await startBindZone();
  }, 60_000);
  afterAll(async () => {
    await dns?.stop();
  });

  it.each(['udp', 'tcp'] as const)(
    'over %s: adds a TXT value, and removes exactly that one (another value at the name survives)',
    async (transport) => {
      const p = provider({ transport });
      const name = `_acme-challenge.${transport}.${dns.zone}`;
      await p.setTxt(name, 'first-value');
      await p.setTxt(name, 'second-value');
      expect((await dns.txt(dns.primary, name)).sort()).toEqual(['first-value', 'second-value']);
      await p.removeTxt(name, 'first-value');
      expect(await dns.txt(dns.primary, name)).toEqual(['second-value']);
      await p.removeTxt(name, 'second-value');
      expect(await dns.txt(dns.primary, name)).toEqual([]);
      // Removing a value already gone is not an error (cleanup after a failed present).
      await p.removeTxt(name, 'second-value');
    },
  );

  it('finds the zone from the server’s SOA, or takes it as configured; a zone the server does not hold is refused', async () => {
    const name = `_acme-challenge.deep.below.${dns.zone}`;
    expect(await provider().zoneOf(name)).toBe(dns.zone);
    await provider({ zone: `${dns.zone}.` }).setTxt(name, 'configured-zone');
    expect(await dns.txt(dns.primary, name)).toEqual(['configured-zone']);
    await provider().removeTxt(name, 'configured-zone');
    await expect(provider({ zone: 'elsewhere.test' }).setTxt(name, 'x')).rejects.toMatchObject({
      code: 'CHALLENGE_FAILED',
      details: { rcode: 'NOTAUTH', retryable: false },
    });
  });

  it('a wrong secret (BADSIG) or an unknown key (BADKEY) is refused, changes nothing, and is not retried blindly', async () => {
    const name = `_acme-challenge.refused.${dns.zone}`;
    const wrong = provider({
      tsig: { ...dns.tsig, secret: randomBytes(32).toString('base64') },
      zone: dns.zone,
    });
    await expect(wrong.setTxt(name, 'x')).rejects.toMatchObject({
      code: 'CHALLENGE_FAILED',
      message: expect.stringMatching(/refused: BADSIG/),
      details: { tsigError: 'BADSIG', retryable: false },
    });
    const unknown = provider({ tsig: { ...dns.tsig, name: 'nobody.' }, zone: dns.zone });
    await expect(unknown.setTxt(name, 'x')).rejects.toMatchObject({
      details: { tsigError: 'BADKEY', retryable: false },
    });
    expect(await dns.txt(dns.primary, name)).toEqual([]);
    // The secret never appears in what is reported.
    const error = await wrong.setTxt(name, 'x').catch((e: Error) => e);
    expect(JSON.stringify(error)).not.toContain(dns.tsig.secret);
  });

  it('an answer not signed with the key is never taken as success (a spoofed NOERROR)', async () => {
    const spoofer: Socket = createSocket('udp4');
    await new Promise<void>((resolve) => spoofer.bind(0, '127.0.0.1', resolve));
    spoofer.on('message', (query, from) => {
      const q = decodeMessage(query);
      // NOERROR to whatever was asked, with no TSIG: what an attacker on the path can send.
      const answer = encodeMessage({
        id: q.id,
        flags: 0x8000 | (q.opcode << 11),
        questions: q.questions,
        answers: [],
        authority: [],
        additional: [],
      });
      spoofer.send(answer, from.port, from.address);
    });
    try {
      const p = new Rfc2136Provider({
        server: `127.0.0.1:${spoofer.address().port}`,
        tsig: dns.tsig,
        zone: dns.zone,
      });
      await expect(p.setTxt(`_acme-challenge.spoof.${dns.zone}`, 'x')).rejects.toMatchObject({
        code: 'CHALLENGE_FAILED',
        message: expect.stringMatching(/not signed with key/),
      });
    } finally {
      spoofer.close();
    }
  });

  it('the propagation check waits until every authoritative server of the zone has the record', async () => {
    const secondary = dns.secondary!;
    const t = task(`lagging.${dns.zone}`);
    const solver = new Dns01Solver({
      provider: provider(),
      // The zone's NS records name both servers; BIND answers the lookups, on its test port.
      authoritative: { lookupResolvers: [dns.primary.server], port: dns.port },
      pollIntervalMs: 50,
      propagationTimeoutMs: 30_000,
    });
    // The secondary has not caught up: it is frozen until the check has found it lacking.
    secondary.pause();
    let waitingFor: string[] = [];
    let resumed = false;
    const logger = {
      ...quiet,
      debug(message: string, fields?: Record<string, unknown>) {
        if (!message.includes('waiting for the authoritative servers')) return;
        waitingFor = (fields?.missing as string[]) ?? [];
        if (!resumed && waitingFor.length === 1 && waitingFor[0]!.startsWith(secondary.server)) {
          resumed = true;
          secondary.resume();
        }
      },
    };
    const context = {
      store: new MemoryStore(),
      clock: systemClock,
      logger,
      signal: new AbortController().signal,
    };
    try {
      await solver.present(t, context);
    } finally {
      secondary.resume();
    }
    // It waited for the secondary alone (the primary had the record at once), and returned
    // only once the secondary had it too.
    expect(resumed).toBe(true);
    const name = `_acme-challenge.${t.identifier.value}`;
    const value = (await dns.txt(dns.primary, name))[0]!;
    expect(await dns.txt(secondary, name)).toEqual([value]);
    await solver.cleanup(t);
    expect(await dns.txt(dns.primary, name)).toEqual([]);
  }, 40_000);

  it('a server that never gets the record fails the check in time, naming it', async () => {
    const secondary = dns.secondary!;
    const t = task(`never.${dns.zone}`);
    const solver = new Dns01Solver({
      provider: provider(),
      authoritative: { lookupResolvers: [dns.primary.server], port: dns.port },
      pollIntervalMs: 50,
      propagationTimeoutMs: 1_500,
    });
    const context = {
      store: new MemoryStore(),
      clock: systemClock,
      logger: quiet,
      signal: new AbortController().signal,
    };
    secondary.pause();
    try {
      const error = await solver.present(t, context).catch((e: Error) => e);
      expect(error).toMatchObject({ code: 'CHALLENGE_FAILED', details: { zone: dns.zone } });
      expect((error as Error).message).toContain(secondary.server);
      expect((error as Error).message).not.toContain(`${dns.primary.server}:`);
    } finally {
      secondary.resume();
      await solver.cleanup(t);
    }
  }, 20_000);

  it.runIf(pebbleAvailable() || process.env.CI === 'true')(
    'DNS-01 end to end: Pebble resolves through BIND, a wildcard and its base name are validated at once, records removed after',
    async () => {
      // Pebble asks the secondary: the record must have propagated for the CA to see it.
      const pebble = await startPebble({
        dnsServer: dns.secondary!.server,
        env: { PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' },
      });
      const store = new MemoryStore();
      const issuer = new AcmeIssuer({
        directoryUrl: pebble.directoryUrl,
        ca: pebble.caPem,
        agreeToTerms: true,
        trustAnchors: [await pebble.roots()],
        challenges: [
          new Dns01Solver({
            provider: provider(),
            authoritative: { lookupResolvers: [dns.primary.server], port: dns.port },
            pollIntervalMs: 50,
          }),
        ],
      });
      const manager = createCertificateManager({
        store,
        issuer,
        logger: quiet,
        certificates: [{ id: 'wild', names: [`*.e2e.${dns.zone}`, `e2e.${dns.zone}`] }],
      });
      try {
        await manager.start();
        await manager.ready();
        const served = parseCertificates(manager.certificate('wild')!.chainPem)[0]!;
        expect([...served.info.dnsNames].sort()).toEqual([`*.e2e.${dns.zone}`, `e2e.${dns.zone}`].sort());
        const name = `_acme-challenge.e2e.${dns.zone}`;
        expect(await dns.txt(dns.primary, name)).toEqual([]);
        expect(pebble.logs()).toMatch(/authz .* set VALID by completed challenge/);
      } finally {
        await manager.stop();
        await issuer.close();
        await pebble.stop();
      }
    },
    60_000,
  );
});
