// Start-up: a valid stored certificate is served at once, issuer or not; damaged entries are
// reported, never served, and healed by re-issuing (a damaged pointer with its generation intact:
// store-damage.test.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../src/crypto/keys.js';
import type { ManagerEvents } from '../../src/manager/events.js';
import { type CertificateManager, createCertificateManager } from '../../src/manager/manager.js';
import { FileStore } from '../../src/store/file-store.js';
import { layout } from '../../src/store/layout.js';
import type { Store } from '../../src/store/store.js';
import { nextEvent } from '../support/events.js';
import { SwitchableIssuer, unreachableIssuer } from '../support/issuers.js';
import { close, handshake, listen } from '../support/tls.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function manager(
  store: Store,
  issuer: SwitchableIssuer | typeof unreachableIssuer,
  lifetimeOverride?: object,
) {
  const m = createCertificateManager({
    store,
    issuer,
    certificates: [{ id: 'web', names: ['localhost'] }],
    logger: quiet,
    renewal: { retryMinMs: 1_000 },
    ...lifetimeOverride,
  });
  cleanup.push(() => m.stop());
  return m;
}

/** A store holding one good generation, issued by `issuer`, plus the serial served. */
async function seeded(lifetimeMs = 3_600_000) {
  const store = new FileStore({ directory: mkdtempSync(join(tmpdir(), 'ck-startup-')) });
  const issuer = new SwitchableIssuer({ lifetimeMs });
  const first = manager(store, issuer);
  await first.start();
  await first.ready();
  const serial = first.status()[0]!.serial!;
  await first.stop();
  return { store, issuer, serial, keys: layout.certificate(issuer.id, 'web') };
}

async function serve(m: CertificateManager) {
  const server = tls.createServer({});
  m.attach(server);
  const port = await listen(server);
  cleanup.push(() => close(server));
  return port;
}

describe('start-up', () => {
  it('serves a valid stored certificate at once while the issuer is down, renewing in the background', async () => {
    const { store, issuer, serial } = await seeded();
    issuer.fault = 'down';
    const callsBefore = issuer.calls;
    const m = manager(store, issuer);
    const loaded = nextEvent(m, 'loaded');
    await m.start();
    expect(await loaded).toMatchObject({ id: 'web', serial });
    const port = await serve(m);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
    expect(issuer.calls).toBe(callsBefore);

    // Renewal now fails, with backoff, and the stored certificate stays in service.
    const failed = nextEvent(m, 'renewalFailed');
    const renewal = m.renewNow('web');
    const event = await failed;
    await expect(renewal).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
    expect(event).toMatchObject({ servingSerial: serial, attempt: 1 });
    expect(event.error.code).toBe('ISSUER_UNAVAILABLE');
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);

    issuer.fault = null;
    await m.renewNow('web');
    expect(m.status()[0]!.serial).not.toBe(serial);
  });

  it('serves the stored certificate even when no configured issuer is reachable at all', async () => {
    const { store, serial } = await seeded();
    // Another issuer id: the stored one is found under the issuer it came from only if that
    // issuer is configured, so configure the same id, unreachable.
    const down = { ...unreachableIssuer, id: new SwitchableIssuer().id };
    const m = manager(store, down as never);
    await m.start();
    const port = await serve(m);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(serial);
  });

  it.each([
    [
      'a truncated chain',
      async (s: Store, k: ReturnType<typeof layout.certificate>, serial: string) => {
        const pem = Buffer.from((await s.get(k.generation(serial).cert))!).toString();
        await s.put(k.generation(serial).cert, pem.slice(0, pem.length / 2));
      },
    ],
    [
      'garbage bytes for the chain',
      (s: Store, k: ReturnType<typeof layout.certificate>, serial: string) =>
        s.put(k.generation(serial).cert, Buffer.from([0xde, 0xad, 0xbe, 0xef])),
    ],
    [
      'the key of another certificate',
      async (s: Store, k: ReturnType<typeof layout.certificate>, serial: string) =>
        s.put(k.generation(serial).key, (await PrivateKey.generate()).toPem()),
    ],
    [
      'a missing key file',
      (s: Store, k: ReturnType<typeof layout.certificate>, serial: string) =>
        s.delete(k.generation(serial).key),
    ],
  ])('heals %s: reported, never served, re-issued', async (_name, damage) => {
    const { store, issuer, serial, keys } = await seeded();
    await damage(store, keys, serial);
    const m = manager(store, issuer);
    const invalid: ManagerEvents['storedInvalid'][0][] = [];
    m.on('storedInvalid', (e) => invalid.push(e));
    const served: string[] = [];
    m.on('swapped', (e) => served.push(e.serial));
    const port = await serve(m);
    const swapped = nextEvent(m, 'swapped');
    await m.start();
    await swapped;
    expect(invalid.length).toBeGreaterThan(0);
    expect(['STORE_CORRUPT', 'KEY_MISMATCH']).toContain(invalid[0]!.error.code);
    expect(served).toHaveLength(1);
    expect(served[0]).not.toBe(serial);
    expect((await handshake(port, { servername: 'localhost' })).serial).toBe(served[0]);
    // Healed on disk too: a fresh manager loads the new generation without complaint.
    await m.stop();
    const again = manager(store, issuer);
    const loaded = nextEvent(again, 'loaded');
    await again.start();
    expect((await loaded).serial).toBe(served[0]);
  });

  it('falls back to the previous generation when the current one is damaged', async () => {
    const { store, issuer, keys } = await seeded();
    const m1 = manager(store, issuer);
    await m1.start();
    await m1.renewNow('web');
    const [older, newer] = [
      JSON.parse(Buffer.from((await store.get(keys.current))!).toString()).previous.serial,
      m1.status()[0]!.serial!,
    ];
    await m1.stop();
    await store.put(keys.generation(newer).cert, 'garbage');
    issuer.fault = 'down';
    const m2 = manager(store, issuer);
    const loaded = nextEvent(m2, 'loaded');
    await m2.start();
    expect((await loaded).serial).toBe(older);
  });

  it('renews an expired stored certificate at once', async () => {
    const { store, issuer, serial } = await seeded(2_000);
    await new Promise((r) => setTimeout(r, 2_200));
    const m = manager(store, issuer);
    const obtaining = nextEvent(m, 'obtaining');
    await m.start();
    expect(await obtaining).toMatchObject({ id: 'web', reason: 'expired' });
    await nextEvent(m, 'renewed');
    expect(m.status()[0]!.serial).not.toBe(serial);
  });

  it('a certificate stored for other names is not served and is re-issued', async () => {
    const { store, issuer, serial } = await seeded();
    const m = createCertificateManager({
      store,
      issuer,
      certificates: [{ id: 'web', names: ['localhost', 'extra.test'] }],
      logger: quiet,
    });
    cleanup.push(() => m.stop());
    const invalid = nextEvent(m, 'storedInvalid');
    await m.start();
    expect((await invalid).error.code).toBe('NAME_NOT_COVERED');
    await m.ready();
    expect(m.status()[0]!.serial).not.toBe(serial);
  });
});
