// The live check after each swap is a real handshake to the server, and an orderly one (issue 13,
// item 18): the attached server sees no tlsClientError for it, whatever the server (tls, https,
// http2), the TLS version, and whether it verifies client certificates (optional or required;
// a server requiring them refuses the probe, which has none, and that refusal is certkeeper's own
// business, not a client error to alert on).
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/manager/events.js';
import { staticTrust } from '../../src/trust/bundle.js';
import { makePki } from '../support/pki.js';
import { handshake } from '../support/tls.js';
import { cleanup, serve, servedSerial, startManager } from './harness.js';

afterEach(cleanup);

type Kind = 'tls' | 'https' | 'http2';
type Auth = 'none' | 'optional' | 'required';

describe('the live check ends its connection cleanly', () => {
  for (const kind of ['tls', 'https', 'http2'] as Kind[]) {
    for (const auth of ['none', 'optional', 'required'] as Auth[]) {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        it(`${kind} server, client certificates ${auth}, ${version}: no tlsClientError per swap`, async () => {
          const f = await startManager([{ id: 'web', names: ['localhost', '127.0.0.1'] }]);
          const options = { maxVersion: version } as const;
          const server =
            kind === 'tls'
              ? tls.createServer(options, (socket) => socket.end())
              : kind === 'https'
                ? https.createServer(options, (_req, res) => res.end('ok'))
                : (http2.createSecureServer(options, (_req, res) => res.end('ok')) as unknown as tls.Server);
          const clients = await makePki({ names: ['client.test'], extKeyUsage: ['clientAuth'] });
          f.manager.attach(
            server,
            auth === 'none'
              ? {}
              : { clientAuth: { trust: staticTrust([clients.rootPem]), required: auth === 'required' } },
          );
          const errors: string[] = [];
          server.on('tlsClientError', (error: Error & { code?: string }) =>
            errors.push(error.code ?? error.message),
          );
          const port = await serve(server);
          const swaps: ManagerEvents['swapped'][0][] = [];
          f.manager.on('swapped', (event) => swaps.push(event));
          const failures: unknown[] = [];
          f.manager.on('liveVerifyFailed', (event) => failures.push(event));

          for (let i = 0; i < 3; i++) await f.manager.renewNow('web');
          // Every swap was checked on this server, and passed.
          expect(swaps.map((s) => s.verified)).toEqual([1, 1, 1]);
          expect(failures).toEqual([]);
          // A client connecting now gets the last certificate (the server still works as before).
          const served = await handshake(port, {
            servername: 'localhost',
            ca: f.root,
            maxVersion: version,
            key: clients.keyPem,
            cert: clients.chainPem,
          });
          expect(served.serial).toBe(servedSerial(f.manager, 'web'));
          expect(errors).toEqual([]);
          if (auth === 'required') {
            // Only the probe's refusal is kept quiet: another client without a certificate is reported.
            const reported = new Promise<void>((resolve) => server.once('tlsClientError', () => resolve()));
            await handshake(port, { servername: 'localhost', maxVersion: version }).catch(() => {});
            await reported;
            expect(errors).toHaveLength(1);
          }
        });
      }
    }
  }
});
