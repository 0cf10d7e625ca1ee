// Which certificate a handshake gets: the manager's name map (exact name, then the wildcard one
// label up, then the server's default), seen by a Node client and by `openssl s_client`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTlsServer, type ManagedServerOptions } from '../../src/server/create-server.js';
import { handshake, opensslServedSerial } from '../support/tls.js';
import { cleanup, type Fixture, serve, servedSerial, startManager } from './harness.js';

const CERTIFICATES = [
  { id: 'web', names: ['localhost', '127.0.0.1'] },
  { id: 'wild', names: ['*.api.test'] },
  { id: 'exact', names: ['special.api.test'] },
  { id: 'other', names: ['other.test'] },
];

interface Setup {
  port: number;
  serial(id: string): string;
  idOf(serial: string): string | undefined;
}

async function serverOf(fixture: Fixture, attach: ManagedServerOptions = {}): Promise<Setup> {
  const server = createTlsServer(fixture.manager, {}, (socket) => socket.end(), attach);
  const port = await serve(server);
  const serial = (id: string) => servedSerial(fixture.manager, id);
  const idOf = (s: string) => fixture.manager.status().find((c) => c.serial?.toLowerCase() === s)?.id;
  return { port, serial, idOf };
}

type Case = [servername: string | undefined, id: string];

/**
 * Asks a Node client and openssl s_client, concurrently, for each servername (undefined: no SNI)
 * and compares the served serials with the expected certificate ids, all at once.
 */
async function expectServing(f: Setup, cases: Case[]) {
  const label = (name: string | undefined) => name ?? '(no SNI)';
  const actual: Record<string, string> = {};
  const expected: Record<string, string> = {};
  await Promise.all(
    cases.map(async ([servername, id]) => {
      const [node, openssl] = await Promise.all([
        handshake(f.port, { servername }).then((s) => s.serial),
        opensslServedSerial(f.port, servername),
      ]);
      actual[`${label(servername)} node`] = node;
      actual[`${label(servername)} openssl`] = openssl;
      expected[`${label(servername)} node`] = f.serial(id);
      expected[`${label(servername)} openssl`] = f.serial(id);
    }),
  );
  // Ids instead of serials make a failure readable.
  const named = (map: Record<string, string>) =>
    Object.fromEntries(Object.entries(map).map(([k, v]) => [k, f.idOf(v) ?? v]));
  expect(named(actual)).toEqual(named(expected));
}

/** The handshake is refused, for both clients. */
async function expectRefused(f: Setup, servername: string) {
  await expect(handshake(f.port, { servername })).rejects.toThrow();
  await expect(opensslServedSerial(f.port, servername)).rejects.toThrow();
}

describe('SNI picks the certificate from the manager map', () => {
  // One manager for the read-only cases; each test makes its own server.
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await startManager(CERTIFICATES, {}, true);
  });
  afterAll(() => fixture.manager.stop());
  afterEach(cleanup);

  it('issued distinct certificates (so a server serving one for all names would be caught)', () => {
    expect(new Set(CERTIFICATES.map((c) => servedSerial(fixture.manager, c.id))).size).toBe(
      CERTIFICATES.length,
    );
  });

  it('serves an exact name, and the chain verifies against the CA root for that name', async () => {
    const f = await serverOf(fixture);
    await expectServing(f, [
      ['other.test', 'other'],
      ['localhost', 'web'],
    ]);
    const verified = await handshake(f.port, {
      servername: 'other.test',
      ca: fixture.root,
      rejectUnauthorized: true,
    });
    expect(verified.authorized).toBe(true);
  });

  it('matches SNI case-insensitively and ignores a trailing dot', async () => {
    const f = await serverOf(fixture);
    await expectServing(f, [
      ['OTHER.Test', 'other'],
      ['X.API.TEST', 'wild'],
      ['other.test.', 'other'],
      ['x.api.test.', 'wild'],
    ]);
  });

  it('prefers an exact name over a wildcard that also covers it', async () => {
    const f = await serverOf(fixture);
    await expectServing(f, [
      ['special.api.test', 'exact'],
      ['plain.api.test', 'wild'],
    ]);
  });

  it('serves a wildcard for one label only: x.api.test, not api.test nor a.b.api.test', async () => {
    const f = await serverOf(fixture);
    await expectServing(f, [
      ['x.api.test', 'wild'],
      ['api.test', 'web'],
      ['a.b.api.test', 'web'],
    ]);
    const verified = await handshake(f.port, {
      servername: 'x.api.test',
      ca: fixture.root,
      rejectUnauthorized: true,
    });
    expect(verified.authorized).toBe(true);
  });

  it('serves the default certificate to clients without SNI and for unknown names', async () => {
    const f = await serverOf(fixture);
    await expectServing(f, [
      [undefined, 'web'],
      ['unknown.test', 'web'],
    ]);
  });

  it("unknownName: 'reject' refuses unknown names but still serves no-SNI clients the default", async () => {
    const f = await serverOf(fixture, { unknownName: 'reject' });
    await expectRefused(f, 'unknown.test');
    await expectRefused(f, 'a.b.api.test');
    await expectServing(f, [
      [undefined, 'web'],
      ['x.api.test', 'wild'],
      ['localhost', 'web'],
    ]);
  });

  it('certificates: [...] restricts what a server serves; the first one is its default', async () => {
    const f = await serverOf(fixture, { certificates: ['wild', 'other'] });
    await expectServing(f, [
      ['x.api.test', 'wild'],
      ['other.test', 'other'],
      // 'web' is managed but not served here: its names get this server's default.
      ['localhost', 'wild'],
      [undefined, 'wild'],
    ]);
  });

  it('defaultCertificate picks the default for no-SNI clients and unknown names', async () => {
    const f = await serverOf(fixture, { defaultCertificate: 'other' });
    await expectServing(f, [
      [undefined, 'other'],
      ['unknown.test', 'other'],
      ['localhost', 'web'],
      ['x.api.test', 'wild'],
    ]);
  });
});

describe('SNI choice as certificates change (a manager per test)', () => {
  afterEach(cleanup);

  it('defaultCertificate outside certificates: [...] is served as the default and kept renewed', async () => {
    const fixture = await startManager(CERTIFICATES);
    const f = await serverOf(fixture, { certificates: ['wild'], defaultCertificate: 'other' });
    await expectServing(f, [
      [undefined, 'other'],
      ['x.api.test', 'wild'],
    ]);
    const before = f.serial('other');
    await fixture.manager.renewNow('other');
    expect(f.serial('other')).not.toBe(before);
    await expectServing(f, [
      [undefined, 'other'],
      ['other.test', 'other'],
      ['x.api.test', 'wild'],
    ]);
  });

  it('after unmanage(), a name two certificates asked for is served by the other one', async () => {
    const fixture = await startManager([
      { id: 'web', names: ['localhost'] },
      { id: 'first', names: ['shared.test', 'first.test'] },
      { id: 'second', names: ['shared.test', 'second.test'] },
    ]);
    const f = await serverOf(fixture);
    const second = f.serial('second');
    await expectServing(f, [['shared.test', 'first']]);
    fixture.manager.unmanage('first');
    expect((await handshake(f.port, { servername: 'shared.test' })).serial).toBe(second);
    expect(await opensslServedSerial(f.port, 'shared.test')).toBe(second);
  });
});
