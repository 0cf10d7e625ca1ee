// Hostile server names sent in SNI by real clients: an IPv6 literal with a zone id
// (`fe80::1%eth0`, `::1%1`) and other shapes that are not names. Each is an unknown name: the
// default certificate is served (or, with unknownName: 'reject', the handshake is refused), the
// SNI handler never throws, and the server keeps serving everyone else.
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTlsServer, type ManagedServerOptions } from '../../src/server/create-server.js';
import { handshake, opensslServedSerial } from '../support/tls.js';
import { cleanup, type Fixture, serve, servedSerial, startManager } from './harness.js';

const HOSTILE = ['fe80::1%eth0', '::1%1', 'FE80::1%25eth0', '[::1%lo]', '%', 'a.test%eth0', '1.2.3.4%0'];

let fixture: Fixture;
beforeAll(async () => {
  fixture = await startManager(
    [
      { id: 'web', names: ['localhost', '127.0.0.1', '::1'] },
      { id: 'other', names: ['other.test', 'fe80::1'] },
    ],
    {},
    true,
  );
});
afterAll(() => fixture.manager.stop());
afterEach(cleanup);

/** A server recording every tlsClientError, so an exception thrown by the SNI handler shows. */
async function server(attach: ManagedServerOptions = {}) {
  const errors: string[] = [];
  const s = createTlsServer(fixture.manager, {}, (socket) => socket.end(), attach);
  s.on('tlsClientError', (error: NodeJS.ErrnoException) => errors.push(`${error.code}: ${error.message}`));
  const port = await serve(s);
  return { port, errors };
}

describe('SNI with an IPv6 zone id or other non-names', () => {
  it('manager.lookup treats them as unknown names instead of throwing', () => {
    for (const name of HOSTILE) expect(fixture.manager.lookup(name)).toBeUndefined();
    // The name without its zone id is still found: the zone is what makes it unknown.
    expect(fixture.manager.lookup('fe80::1')).toBe('other');
  });

  it('a Node client sending them in SNI gets the default certificate; no handshake error', async () => {
    const { port, errors } = await server();
    const web = servedSerial(fixture.manager, 'web');
    for (const servername of HOSTILE) {
      // Node's client sends an IP-looking servername as it is (with a deprecation warning).
      const served = await handshake(port, { servername });
      expect({ servername, serial: served.serial }).toEqual({ servername, serial: web });
    }
    expect(errors).toEqual([]);
    // The same server still routes known names.
    expect((await handshake(port, { servername: 'other.test' })).serial).toBe(
      servedSerial(fixture.manager, 'other'),
    );
  });

  it('openssl s_client sending them gets the default certificate too', async () => {
    const { port, errors } = await server();
    const web = servedSerial(fixture.manager, 'web');
    for (const servername of ['fe80::1%eth0', '::1%1']) {
      expect(await opensslServedSerial(port, servername)).toBe(web);
    }
    expect(errors).toEqual([]);
  });

  it("unknownName: 'reject' refuses them like any unknown name (an alert, not an exception)", async () => {
    const { port, errors } = await server({ unknownName: 'reject' });
    for (const servername of ['fe80::1%eth0', '::1%1']) {
      await expect(handshake(port, { servername })).rejects.toThrow();
    }
    expect(errors.every((e) => /no certificate for/.test(e))).toBe(true);
    expect(errors.some((e) => /ERR_INVALID_URL|Invalid URL/.test(e))).toBe(false);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(
      servedSerial(fixture.manager, 'web'),
    );
  });

  it('the hostile name really reaches an SNI callback as sent (Node does not filter it)', async () => {
    const seen: string[] = [];
    const probe = tls.createServer({
      SNICallback: (name, cb) => {
        seen.push(name);
        cb(null);
      },
    });
    probe.on('tlsClientError', () => {});
    const probePort = await serve(probe);
    await handshake(probePort, { servername: 'fe80::1%eth0' }).catch(() => {});
    expect(seen).toEqual(['fe80::1%eth0']);
  });
});
