// With lazy loading (more certificates than `eagerLoadLimit`), the server's default certificate is
// read from the store in the background when the server is attached. A handshake accepted before
// that load finished held the server's old context, which has no certificate: the SNI callback
// answered "the server's own context" (cb(null)) and the client got a handshake-failure alert. The
// store reads of the default certificate are held here until the client's connection is accepted,
// and its SNI callback runs either while the load is still under way or after it installed the
// certificate (the connection still holding the context it was accepted with).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateManager } from '../../src/index.js';
import { FileStore } from '../../src/store/file-store.js';
import { keyHasPrefix, layout } from '../../src/store/layout.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const certificates = [
  { id: 'web', names: ['default.test'] },
  { id: 'api', names: ['api.test'] },
  { id: 'admin', names: ['admin.test'] },
];

/** A FileStore holding all three certificates, written by a first (eager) manager. */
async function storedFleet() {
  const dir = mkdtempSync(join(tmpdir(), 'ck-lazy-default-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileStore({ directory: dir });
  const issuer = new SwitchableIssuer({ lifetimeMs: 3_600_000 });
  const first = createCertificateManager({
    store,
    issuer,
    certificates,
    logger: quiet,
    reconcileIntervalMs: 0,
  });
  await first.start();
  await first.ready();
  const serials = new Map(certificates.map((c) => [c.id, first.certificate(c.id)!.serial]));
  await first.stop();
  issuer.fault = 'down'; // the restart must serve what is stored, never order
  return { store, issuer, serials };
}

type Sni = (
  this: unknown,
  servername: string,
  cb: (err: Error | null, ctx?: tls.SecureContext) => void,
) => void;

/** Runs `before` ahead of the server's SNI callback (Node keeps it under an internal symbol). */
function beforeSni(server: tls.Server, before: () => Promise<void> | void): void {
  const symbol = Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback')!;
  const fields = server as unknown as Record<symbol, Sni>;
  const route = fields[symbol]!;
  fields[symbol] = function sni(servername, cb) {
    void Promise.resolve(before()).then(() => route.call(this, servername, cb));
  };
}

describe('lazy loading: the first handshakes for the default certificate', () => {
  for (const servername of ['default.test', 'unknown.test']) {
    for (const sni of ['while it loads', 'after it loaded'] as const) {
      it(`${servername}, accepted before the default certificate is loaded, SNI ${sni}: served it`, async () => {
        const { store, issuer, serials } = await storedFleet();
        // Reads of the default certificate's generation (start-up reads only its pointer) are held.
        let release!: () => void;
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        const web = layout.certificate(issuer.id, 'web');
        const get = store.get.bind(store);
        store.get = async (key) => {
          if (keyHasPrefix(key, web.dir) && key !== web.current) await held;
          return get(key);
        };
        const m = createCertificateManager({
          store,
          issuer,
          certificates,
          logger: quiet,
          reconcileIntervalMs: 0,
          eagerLoadLimit: 0,
        });
        cleanup.push(() => m.stop());
        await m.start();
        expect(m.certificate('web')).toBeNull(); // not in memory yet
        const server = tls.createServer({});
        m.attach(server); // starts loading the default in the background
        const port = await listen(server);
        cleanup.push(() => close(server));
        let first = true;
        if (sni === 'while it loads') {
          // The load goes on once the first handshake's SNI callback has begun.
          beforeSni(server, () => release());
        } else {
          // The connection is accepted, then the load completes, then its SNI callback runs.
          server.once('connection', () => release());
          beforeSni(server, async () => {
            if (first) await m.load('web');
            first = false;
          });
        }
        const served = await handshake(port, { servername });
        expect(served.serial).toBe(serials.get('web'));
        // And later handshakes, with and without SNI, as before.
        expect((await handshake(port, { servername })).serial).toBe(serials.get('web'));
        expect((await handshake(port, {})).serial).toBe(serials.get('web'));
        expect((await handshake(port, { servername: 'api.test' })).serial).toBe(serials.get('api'));
        expect(issuer.calls).toBe(certificates.length);
      });
    }
  }
});
