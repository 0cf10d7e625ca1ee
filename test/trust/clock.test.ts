// The trust store's poll and the sources' re-fetch/poll timers run on the injected clock: a
// FakeClock drives them, and they stop with the store or the watch.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/testing/fake-clock.js';
import { FileTrustSource } from '../../src/trust/file-source.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { UrlTrustSource } from '../../src/trust/url-source.js';
import { makePki } from '../support/pki.js';
import { listen } from '../support/tls.js';

const dirs: string[] = [];
const servers: https.Server[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

describe('trust timers on the injected clock', () => {
  it("TrustStore's pollIntervalMs re-loads the sources when the FakeClock says so, and not after stop()", async () => {
    const { rootPem } = await makePki();
    let loads = 0;
    const clock = new FakeClock();
    const store = new TrustStore({
      sources: [
        {
          name: 'counted',
          load: async () => {
            loads++;
            return [rootPem];
          },
        },
      ],
      pollIntervalMs: 60_000,
      clock,
    });
    await store.start();
    expect(loads).toBe(1);
    await clock.advance(59_000);
    expect(loads).toBe(1);
    await clock.advance(1_000);
    await clock.advance(60_000);
    await store.refresh(); // waits for the background runs queued before it
    expect(loads).toBe(4);
    await store.stop();
    expect(clock.pending).toBe(0);
    await clock.advance(600_000);
    expect(loads).toBe(4);
  });

  it("UrlTrustSource's refreshIntervalMs and FileTrustSource's poll fire on the FakeClock", async () => {
    const clock = new FakeClock();
    const { rootPem } = await makePki();
    const url = new UrlTrustSource({
      url: 'https://127.0.0.1:1/roots.pem',
      ca: rootPem,
      refreshIntervalMs: 5_000,
      clock,
    });
    let fetches = 0;
    const stopUrl = url.watch(() => fetches++);
    await clock.advance(15_000);
    expect(fetches).toBe(3);
    stopUrl();
    await clock.advance(15_000);
    expect(fetches).toBe(3);

    const dir = mkdtempSync(join(tmpdir(), 'certkeeper-trust-clock-'));
    dirs.push(dir);
    const path = join(dir, 'roots.pem');
    writeFileSync(path, 'a');
    const files = new FileTrustSource({ paths: [path], pollIntervalMs: 1_000, fsWatch: false, clock });
    let changes = 0;
    const stopFiles = files.watch(() => changes++);
    await clock.advance(1_000);
    writeFileSync(path, 'a longer content');
    // The poll compares file signatures (stat, asynchronous): let it run between ticks.
    for (let i = 0; i < 500 && changes === 0; i++) {
      await clock.advance(1_000);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(changes).toBe(1);
    stopFiles();
    expect(clock.pending).toBe(0);
  });

  it("UrlTrustSource checks a pinned CA's chain at the clock's time: valid now, expired twenty years on", async () => {
    const pki = await makePki({ names: ['127.0.0.1'] });
    const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (_req, res) =>
      res.end(pki.rootPem),
    );
    servers.push(server);
    const url = `https://127.0.0.1:${await listen(server)}/roots.pem`;
    const pins = [pki.intermediate.certificate.info.fingerprint256];
    const signal = new AbortController().signal;
    const now = new UrlTrustSource({ url, pins, clock: new FakeClock() });
    await expect(now.load(signal)).resolves.toEqual([pki.rootPem]);
    const later = new UrlTrustSource({ url, pins, clock: new FakeClock(Date.now() + 20 * 365 * 86_400_000) });
    await expect(later.load(signal)).rejects.toMatchObject({
      code: 'TRUST_PIN_MISMATCH',
      message: /not valid up to the pinned certificate/,
    });
  });
});
