// TLS-ALPN-01 on the serving port: the challenge certificate per RFC 8737, and tls / https /
// http2 servers answering `acme-tls/1` under TLS 1.2 and 1.3 while ordinary clients negotiate
// h2 / http/1.1 as before.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChallengeTask } from '../../src/challenges/solver.js';
import { alpnIdentifier } from '../../src/challenges/tls-alpn-01/record.js';
import { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import {
  alpnRecordKey,
  alpnServerName,
  createAlpnCertificate,
  TlsAlpn01Solver,
  tlsAlpnSupported,
} from '../../src/challenges/tls-alpn-01/solver.js';
import { systemClock } from '../../src/clock.js';
import { x509 } from '../../src/crypto/x509.js';
import { silentLogger } from '../../src/logger.js';
import type { Generation } from '../../src/manager/records.js';
import { ServerAttachment } from '../../src/server/attachment.js';
import { CertificateCache } from '../../src/server/certificate-cache.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { selfSigned } from '../support/issuers.js';
import { close, listen } from '../support/tls.js';

const servers: tls.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => close(s)));
});

const task: ChallengeTask = {
  type: 'tls-alpn-01',
  identifier: { type: 'dns', value: 'a.test' },
  wildcard: false,
  token: 'tok',
  keyAuthorization: 'tok.thumbprint',
};

function connect(port: number, options: tls.ConnectionOptions) {
  return new Promise<{ issuer?: string; alpn: string | false | null; ext?: string; sans?: string }>(
    (resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
      socket.once('secureConnect', () => {
        const peer = socket.getPeerX509Certificate();
        const text = peer
          ? execFileSync('openssl', ['x509', '-noout', '-text'], { input: peer.toString() }).toString()
          : '';
        resolve({
          issuer: peer?.issuer,
          alpn: socket.alpnProtocol,
          ext: /1\.3\.6\.1\.5\.5\.7\.1\.31: critical\s+([^\n]+)/.exec(text)?.[1]?.trim(),
          sans: peer?.subjectAltName,
        });
        socket.destroy();
      });
      socket.once('error', reject);
    },
  );
}

async function servedGeneration(names: string[]): Promise<Generation> {
  const { key, certificate } = await selfSigned(names);
  return {
    issuer: 'test',
    chainPem: certificate.pem,
    key,
    info: certificate.info,
    chain: [certificate.info],
    storedAt: 0,
  };
}

describe('TLS-ALPN-01 challenge certificate (RFC 8737)', () => {
  it('has exactly the identifier and a critical acmeIdentifier extension holding SHA-256(keyAuthorization)', async () => {
    const { cert } = await createAlpnCertificate(task);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: cert }).toString();
    expect(text).toMatch(/1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
    const digest = createHash('sha256').update(task.keyAuthorization).digest('hex');
    const extension = new x509.X509Certificate(cert).getExtension('1.3.6.1.5.5.7.1.31')!;
    expect(extension.critical).toBe(true);
    // extnValue is the DER of an OCTET STRING (04, length 32) holding the digest.
    expect(Buffer.from(extension.value).toString('hex')).toBe(`0420${digest}`);
    expect(text).toMatch(/DNS:a\.test\s*\n/);
    expect(text.match(/DNS:|IP Address:/g)).toHaveLength(1);
  });

  it('uses the reverse name as SNI for IP identifiers (RFC 8738)', () => {
    expect(alpnServerName({ type: 'ip', value: '192.0.2.1' })).toBe('1.2.0.192.in-addr.arpa');
    expect(alpnServerName({ type: 'ip', value: '2001:db8::567:89ab' })).toBe(
      'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
    expect(alpnServerName({ type: 'dns', value: 'A.Test' })).toBe('a.test');
  });

  it('maps a validation’s SNI back to its identifier (what replicas check records against)', () => {
    const identifiers = [
      { type: 'dns', value: 'a.test' },
      { type: 'ip', value: '192.0.2.1' },
      { type: 'ip', value: '2001:db8::567:89ab' },
    ] as const;
    for (const identifier of identifiers)
      expect(alpnIdentifier(alpnServerName(identifier))).toEqual(identifier);
    for (const bad of ['1.2.3.in-addr.arpa', '300.2.0.192.in-addr.arpa', 'a/b', 'x.ip6.arpa'])
      expect(alpnIdentifier(bad)).toBeNull();
  });

  it('is supported on this Node (>= 20.18 / 22.9)', () => {
    expect(tlsAlpnSupported()).toBe(true);
    expect(tlsAlpnSupported('20.17.0')).toBe(false);
    expect(tlsAlpnSupported('22.8.0')).toBe(false);
  });
});

describe('TLS-ALPN-01 clean-up', () => {
  it('removes only its own challenge: another order for the same name keeps its answer', async () => {
    const store = new MemoryStore();
    const registry = new AlpnChallengeRegistry();
    const context = {
      store,
      clock: systemClock,
      logger: silentLogger,
      signal: new AbortController().signal,
      tlsAlpn: { registry },
    };
    const first = { ...task, token: 'first', keyAuthorization: 'first.thumbprint' };
    const second = { ...task, token: 'second', keyAuthorization: 'second.thumbprint' };
    const solverA = new TlsAlpn01Solver();
    const solverB = new TlsAlpn01Solver();
    await solverA.present(first, context);
    const held = registry.get('a.test');
    // A second order for the same name (a forced renewal racing the scheduled one) takes over.
    await solverB.present(second, context);
    const stored = await store.get(alpnRecordKey('a.test'));
    expect(registry.get('a.test')).not.toBe(held);

    // The first order cleans up late: the second's answer stays, in the store and in memory.
    await solverA.cleanup(first, context);
    expect(await store.get(alpnRecordKey('a.test'))).toEqual(stored);
    expect(registry.get('a.test')).toBeDefined();
    // A solver object that did not present (another process cleaning up) checks the store too.
    await new TlsAlpn01Solver().cleanup(first, context);
    expect(await store.get(alpnRecordKey('a.test'))).toEqual(stored);

    await solverB.cleanup(second, context);
    expect(await store.get(alpnRecordKey('a.test'))).toBeNull();
    expect(registry.get('a.test')).toBeUndefined();
  });
});

describe('TLS-ALPN-01 on the serving port', () => {
  const kinds = [
    ['tls', (o: tls.TlsOptions) => tls.createServer(o), ['my-proto']],
    ['https', (o: tls.TlsOptions) => https.createServer(o), undefined],
    [
      'http2',
      (o: tls.TlsOptions) => http2.createSecureServer({ ...o, allowHTTP1: true }) as unknown as tls.Server,
      undefined,
    ],
  ] as const;

  for (const [kind, make, alpnProtocols] of kinds) {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      it(`${kind} server, ${version}: answers acme-tls/1 with the challenge, others as before`, async () => {
        const generation = await servedGeneration(['a.test']);
        const registry = new AlpnChallengeRegistry();
        const server = make({ key: generation.key.toPem(), cert: generation.chainPem });
        servers.push(server);
        const cache = new CertificateCache();
        cache.add('web', ['a.test'], true);
        cache.set('web', generation);
        const source = {
          cache,
          logger: silentLogger,
          alpnChallenges: registry,
          usesTlsAlpn: () => true,
        };
        const attachment = new ServerAttachment(server, source, {
          alpnProtocols: alpnProtocols ? [...alpnProtocols] : undefined,
        });
        attachment.apply('web', generation);
        const port = await listen(server);
        const store = new MemoryStore();
        const solver = new TlsAlpn01Solver();
        await solver.present(task, {
          store,
          clock: systemClock,
          logger: silentLogger,
          signal: new AbortController().signal,
          tlsAlpn: { registry },
        });
        expect(await store.get(alpnRecordKey('a.test'))).not.toBeNull();

        const base = { servername: 'a.test', minVersion: version, maxVersion: version } as const;
        const challenge = await connect(port, { ...base, ALPNProtocols: ['acme-tls/1'] });
        expect(challenge).toMatchObject({ alpn: 'acme-tls/1', sans: 'DNS:a.test' });
        expect(challenge.ext).toBeDefined();

        const ordinary = kind === 'tls' ? ['my-proto'] : ['h2', 'http/1.1'];
        const expected = kind === 'tls' ? 'my-proto' : kind === 'https' ? 'http/1.1' : 'h2';
        const normal = await connect(port, { ...base, ALPNProtocols: ordinary });
        expect(normal).toMatchObject({ alpn: expected, ext: undefined, sans: 'DNS:a.test' });
        expect(await connect(port, { ...base })).toMatchObject({ alpn: false, ext: undefined });

        // After cleanup, acme-tls/1 gets no challenge certificate.
        await solver.cleanup(task, {
          store,
          clock: systemClock,
          logger: silentLogger,
          signal: new AbortController().signal,
          tlsAlpn: { registry },
        });
        await expect(connect(port, { ...base, ALPNProtocols: ['acme-tls/1'] })).rejects.toThrow(
          /no application protocol/,
        );
        attachment.detach();
      });
    }
  }
});
