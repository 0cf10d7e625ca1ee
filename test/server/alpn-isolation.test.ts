// A TLS-ALPN-01 validation connection is the challenge certificate and nothing else (issue 12,
// item 1). The attack: a client offering ALPN `acme-tls/1` with the SNI of a name under
// validation, presenting a client certificate from some other CA. Whatever the server (tls, https,
// http2; made by the helpers or by the user and attached; with or without client authentication)
// and whatever the TLS version, that connection
//   - still gets the RFC 8737 challenge certificate (the CA can validate),
//   - is ended right after the handshake, never reaching 'secureConnection' listeners or the
//     application's handler, and without a tlsClientError,
//   - is asked for no client certificate (no CertificateRequest on the wire),
//   - yields no session that resumes on an ordinary connection (TLS 1.3: no ticket at all; TLS 1.2,
//     where OpenSSL sends the ticket in the same flight as Finished: the ticket no longer decrypts,
//     and no session reaches a server's session cache).
import { execFile } from 'node:child_process';
import { constants } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ChallengeContext, ChallengeTask } from '../../src/challenges/solver.js';
import type { AlpnChallengeRegistry } from '../../src/challenges/tls-alpn-01/registry.js';
import { ID_PE_ACME_IDENTIFIER, TlsAlpn01Solver } from '../../src/challenges/tls-alpn-01/solver.js';
import { systemClock } from '../../src/clock.js';
import { x509 } from '../../src/crypto/x509.js';
import type { CertificateRequest, IssuedCertificate, IssuerContext } from '../../src/issuers/issuer.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import type { ClientAuthOptions } from '../../src/server/attachment.js';
import {
  createHttp2SecureServer,
  createHttpsServer,
  createTlsServer,
} from '../../src/server/create-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { staticTrust } from '../../src/trust/bundle.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { makePki } from '../support/pki.js';
import { cleanup, onCleanup, serve, silent } from './harness.js';

afterEach(cleanup);

const NAME = 'web.test';
const TLS_APP = 'app/1';
type Kind = 'tls' | 'https' | 'http2';
type Made = 'helper' | 'attach';
type Version = 'TLSv1.2' | 'TLSv1.3';

/** The InternalCA, listing TLS-ALPN-01 so attached servers answer it; keeps the manager's challenge registry. */
class AlpnIssuer extends SwitchableIssuer {
  readonly challengeTypes = ['tls-alpn-01'];
  registry: AlpnChallengeRegistry | undefined;

  override async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    this.registry = (context as ChallengeContext).tlsAlpn?.registry;
    return super.issue(request, context);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'certkeeper-alpn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rig {
  manager: CertificateManager;
  server: tls.Server;
  port: number;
  root: string;
  /** Trusted by the server's client authentication. */
  client: { key: string; cert: string };
  /** From another CA: the attacker's. */
  attacker: { key: string; cert: string; keyFile: string; certFile: string };
  /** What the application saw: 'secure:<alpn>' per secureConnection, 'request', 'h2session'. */
  seen: string[];
  clientErrors: string[];
}

async function rig(kind: Kind, made: Made, mtls: boolean, serverOptions: tls.TlsOptions = {}): Promise<Rig> {
  const issuer = new AlpnIssuer({ lifetimeMs: 3_600_000 });
  const store = new MemoryStore();
  const manager = createCertificateManager({
    store,
    issuer,
    logger: silent,
    certificates: [{ id: 'web', names: [NAME] }],
  });
  onCleanup(() => manager.stop());
  await manager.start();
  await manager.ready();
  const root = await issuer.ca.rootCertificate(store);
  const clients = await makePki({ names: ['client.test'], extKeyUsage: ['clientAuth'] });
  const evil = await makePki({ names: ['attacker.test'], extKeyUsage: ['clientAuth'] });
  const clientAuth: ClientAuthOptions | undefined = mtls
    ? { trust: staticTrust([clients.rootPem]), required: true }
    : undefined;

  const seen: string[] = [];
  const handler = (_req: unknown, res: { end(body: string): void }) => {
    seen.push('request');
    res.end('app');
  };
  const tlsListener = (socket: tls.TLSSocket) => socket.end('app');
  let server: tls.Server;
  if (made === 'helper') {
    const attach = clientAuth ? { clientAuth } : {};
    if (kind === 'tls')
      server = createTlsServer(manager, { ALPNProtocols: [TLS_APP], ...serverOptions }, tlsListener, attach);
    else if (kind === 'https') server = createHttpsServer(manager, serverOptions, handler, attach);
    else server = createHttp2SecureServer(manager, serverOptions, handler, attach) as unknown as tls.Server;
  } else {
    if (kind === 'tls')
      server = tls.createServer({ ALPNProtocols: [TLS_APP], ...serverOptions }, tlsListener);
    else if (kind === 'https') server = https.createServer(serverOptions, handler);
    else server = http2.createSecureServer(serverOptions, handler) as unknown as tls.Server;
    manager.attach(server, clientAuth ? { clientAuth } : {});
  }
  server.on('secureConnection', (socket: tls.TLSSocket) => seen.push(`secure:${socket.alpnProtocol}`));
  if (kind === 'http2') server.on('session', () => seen.push('h2session'));
  const clientErrors: string[] = [];
  server.on('tlsClientError', (error: Error & { code?: string }) =>
    clientErrors.push(error.code ?? error.message),
  );
  const port = await serve(server);

  // A validation for NAME is under way: its challenge certificate is held, as during an order.
  const task: ChallengeTask = {
    type: 'tls-alpn-01',
    identifier: { type: 'dns', value: NAME },
    wildcard: false,
    token: 'token',
    keyAuthorization: 'token.thumbprint',
  };
  const context: ChallengeContext = {
    store,
    clock: systemClock,
    logger: silent,
    signal: new AbortController().signal,
    tlsAlpn: { registry: issuer.registry! },
  };
  await new TlsAlpn01Solver().present(task, context);

  const certFile = join(dir, `attacker-${port}.pem`);
  const keyFile = join(dir, `attacker-${port}.key`);
  writeFileSync(certFile, evil.chainPem);
  writeFileSync(keyFile, evil.keyPem, { mode: 0o600 });
  return {
    manager,
    server,
    port,
    root,
    client: { key: clients.keyPem, cert: clients.chainPem },
    attacker: { key: evil.keyPem, cert: evil.chainPem, keyFile, certFile },
    seen,
    clientErrors,
  };
}

interface AttackResult {
  alpn: string | false | null;
  challengeServed: boolean;
  sessions: Buffer[];
  data: string;
}

/** The attack: acme-tls/1 with a foreign client certificate, then an HTTP request on the connection. */
function attack(rig: Rig, version: Version): Promise<AttackResult> {
  return new Promise((resolve, reject) => {
    const result: AttackResult = { alpn: null, challengeServed: false, sessions: [], data: '' };
    const socket = tls.connect({
      host: '127.0.0.1',
      port: rig.port,
      servername: NAME,
      ALPNProtocols: ['acme-tls/1'],
      minVersion: version,
      maxVersion: version,
      rejectUnauthorized: false,
      key: rig.attacker.key,
      cert: rig.attacker.cert,
    });
    socket.on('session', (session: Buffer) => result.sessions.push(session));
    socket.once('secureConnect', () => {
      result.alpn = socket.alpnProtocol;
      const peer = socket.getPeerX509Certificate();
      result.challengeServed =
        peer !== undefined && new x509.X509Certificate(peer.raw).getExtension(ID_PE_ACME_IDENTIFIER) !== null;
      socket.write(`GET / HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      result.data += chunk.toString('latin1');
    });
    // Writing after the server closed may reset the connection: only the close matters.
    socket.on('error', () => {});
    socket.once('close', () => resolve(result));
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(
        new Error(`the server kept the acme-tls/1 connection open (received ${JSON.stringify(result.data)})`),
      );
    });
  });
}

/** The TLS handshake messages `openssl s_client` saw on an acme-tls/1 connection with a client certificate. */
function opensslMessages(rig: Rig, version: Version): Promise<string> {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${rig.port}`,
    '-servername',
    NAME,
    '-alpn',
    'acme-tls/1',
    version === 'TLSv1.3' ? '-tls1_3' : '-tls1_2',
    '-cert',
    rig.attacker.certFile,
    '-key',
    rig.attacker.keyFile,
    '-msg',
    // Read until the server closes, so messages after the handshake (tickets) are seen too.
    '-ign_eof',
  ];
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 5_000 }, (_error, stdout) => resolve(stdout));
    child.stdin!.end();
  });
}

/** An ordinary client; resolves with what the handshake did. */
function ordinary(
  rig: Rig,
  kind: Kind,
  version: Version,
  options: tls.ConnectionOptions = {},
): Promise<{ reused: boolean; alpn: string | false | null }> {
  const alpn = kind === 'tls' ? [TLS_APP] : kind === 'https' ? ['http/1.1'] : ['h2'];
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: rig.port,
      servername: NAME,
      ALPNProtocols: alpn,
      minVersion: version,
      maxVersion: version,
      ca: rig.root,
      ...options,
    });
    socket.once('secureConnect', () => {
      const result = { reused: socket.isSessionReused(), alpn: socket.alpnProtocol };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('ordinary handshake timed out')));
  });
}

/**
 * Offers `session` (one the acme-tls/1 connection yielded) on an ordinary connection, as an
 * attacker would (not verifying the server), then sends a request. Resolves once the server closed.
 */
function resume(
  rig: Rig,
  kind: Kind,
  version: Version,
  session: Buffer,
  offerAlpn: boolean,
): Promise<{ reused: boolean; data: string }> {
  const alpn = kind === 'tls' ? [TLS_APP] : kind === 'https' ? ['http/1.1'] : ['h2'];
  return new Promise((resolve, reject) => {
    const result = { reused: false, data: '' };
    const socket = tls.connect({
      host: '127.0.0.1',
      port: rig.port,
      servername: NAME,
      ...(offerAlpn ? { ALPNProtocols: alpn } : {}),
      minVersion: version,
      maxVersion: version,
      rejectUnauthorized: false,
      session,
    });
    socket.once('secureConnect', () => {
      result.reused = socket.isSessionReused();
      socket.write(`GET / HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      result.data += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(result));
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(
        new Error(`a resumed acme-tls/1 session was kept open (received ${JSON.stringify(result.data)})`),
      );
    });
  });
}

describe('TLS-ALPN-01 connections never reach the application', () => {
  const kinds: Kind[] = ['tls', 'https', 'http2'];
  for (const kind of kinds) {
    for (const made of ['helper', 'attach'] as const) {
      for (const mtls of [false, true]) {
        for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
          const label = `${kind} server (${made === 'helper' ? 'created by the helper' : 'attached'}${mtls ? ', client certificates required' : ''}), ${version}`;
          it(label, async () => {
            const r = await rig(kind, made, mtls);
            const credentials = mtls ? r.client : {};

            const result = await attack(r, version);
            // The CA's view is unchanged: the challenge certificate, over acme-tls/1.
            expect(result.alpn).toBe('acme-tls/1');
            expect(result.challengeServed).toBe(true);
            // Ended by the server right after the handshake: no answer, no listener, no error event.
            expect(result.data).toBe('');
            expect(r.seen).toEqual([]);
            expect(r.clientErrors).toEqual([]);

            // No CertificateRequest (so no client certificate is ever verified on it).
            const messages = await opensslMessages(r, version);
            expect(messages).toMatch(/ALPN protocol: acme-tls\/1/);
            expect(messages).not.toMatch(/CertificateRequest/);
            if (version === 'TLSv1.3') {
              expect(messages).not.toMatch(/NewSessionTicket/);
              expect(result.sessions).toEqual([]);
            }
            expect(r.clientErrors).toEqual([]);
            // Whatever session it yielded (a TLS 1.2 ticket) never serves an ordinary connection:
            // resumed or not, the application does not see it (a server requiring client
            // certificates refuses such a resumption by itself, with a tlsClientError).
            for (const session of result.sessions) {
              for (const offerAlpn of [true, false]) {
                const resumed = await resume(r, kind, version, session, offerAlpn);
                if (resumed.reused) {
                  expect(resumed.data).toBe('');
                  expect(r.seen).toEqual([]);
                }
              }
            }
            expect(r.seen).toEqual([]);

            // Ordinary clients are served as before.
            const errors = r.clientErrors.length;
            const normal = await ordinary(r, kind, version, credentials);
            expect(normal.alpn).toBe(kind === 'tls' ? TLS_APP : kind === 'https' ? 'http/1.1' : 'h2');
            expect(r.clientErrors.slice(errors)).toEqual([]);
          });
        }
      }
    }
  }
});

describe('TLS-ALPN-01 sessions and a server-side session cache', () => {
  it('no acme-tls/1 session reaches newSession listeners; resuming one is refused', async () => {
    const cache = new Map<string, Buffer>();
    const r = await rig('https', 'attach', false);
    r.server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      cache.set(id.toString('hex'), data);
      done();
    });
    r.server.on('resumeSession', (id: Buffer, done: (error: Error | null, data: Buffer | null) => void) =>
      done(null, cache.get(id.toString('hex')) ?? null),
    );
    // Without tickets a TLS 1.2 client gets a session id, stored by the server's cache.
    const noTickets = { secureOptions: constants.SSL_OP_NO_TICKET };
    const sessions: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: r.port,
        servername: NAME,
        ALPNProtocols: ['acme-tls/1'],
        maxVersion: 'TLSv1.2',
        rejectUnauthorized: false,
        ...noTickets,
      });
      socket.once('secureConnect', () => {
        const session = socket.getSession();
        if (session) sessions.push(session);
      });
      socket.on('error', () => {});
      socket.once('close', () => resolve());
      socket.setTimeout(5_000, () => {
        socket.destroy();
        reject(new Error('acme-tls/1 connection kept open'));
      });
    });
    expect(sessions).toHaveLength(1);
    expect(cache.size).toBe(0);
    const resumed = await ordinary(r, 'https', 'TLSv1.2', { session: sessions[0]!, ...noTickets });
    expect(resumed.reused).toBe(false);
    cache.clear();
    // An ordinary session is still cached and resumed.
    const first = await new Promise<Buffer>((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: r.port,
        servername: NAME,
        ALPNProtocols: ['http/1.1'],
        maxVersion: 'TLSv1.2',
        ca: r.root,
        ...noTickets,
      });
      socket.once('secureConnect', () => {
        const session = socket.getSession()!;
        socket.end();
        resolve(session);
      });
      socket.once('error', reject);
    });
    expect(cache.size).toBe(1);
    expect((await ordinary(r, 'https', 'TLSv1.2', { session: first, ...noTickets })).reused).toBe(true);
    expect(r.seen.filter((s) => s.includes('acme-tls/1'))).toEqual([]);
  });
});
