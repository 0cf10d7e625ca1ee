// The status page in a real browser: Debian's chromium, headless, driven by playwright-core. It
// renders every certificate with its timeline and state, updates after renewNow() without a
// reload, shows a CA's error text as text (never markup), fits a phone's width, and runs under
// its own Content-Security-Policy without a violation. Screenshots are kept in the test's
// temporary directory (printed), as artefacts of the run.
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CertkeeperError } from '../../src/errors.js';
import type { CertificateRequest, IssuerContext } from '../../src/issuers/issuer.js';
import { createCertificateManager } from '../../src/manager/manager.js';
import { createStatusPage } from '../../src/ops/status-page.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { SwitchableIssuer } from '../support/issuers.js';
import { requireTools } from '../support/system-tools.js';

// The browser's globals, inside page.evaluate() (this project's type-check has no DOM library).
declare const window: Record<string, unknown> & { innerWidth: number };
declare const document: {
  createElement(tag: string): { textContent: string };
  body: { append(node: unknown): void };
  documentElement: { scrollWidth: number };
};

const tools = requireTools(['chromium'], 'chromium', 'status page tests in a real browser');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const artefacts = mkdtempSync(join(tmpdir(), 'certkeeper-status-page-'));
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** An issuer whose CA answers one name with hostile text, as a compromised or broken CA might. */
class HostileIssuer extends SwitchableIssuer {
  override async issue(request: CertificateRequest, context: IssuerContext) {
    if (request.names.includes('evil.test'))
      throw new CertkeeperError('ACME_PROBLEM', 'CA said: <img src=x onerror="window.__pwned=1"><b>bold</b>');
    return super.issue(request, context);
  }
}

describe.skipIf(!tools)('the status page in headless chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: tools!.chromium,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    console.log(`status page screenshots: ${artefacts}`);
  });

  async function running() {
    const issuer = new HostileIssuer({ lifetimeMs: 3_600_000 });
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer,
      certificates: [
        { id: 'web', names: ['web.test', 'www.web.test'] },
        { id: 'api', names: ['api.test'] },
        { id: 'evil', names: ['evil.test'] },
      ],
      logger: quiet,
      reconcileIntervalMs: 0,
    });
    cleanup.push(() => manager.stop());
    const page = createStatusPage(manager, { title: 'Certificates <of> prod' });
    cleanup.push(() => page.close());
    const failed = new Promise((resolve) => manager.once('renewalFailed', resolve));
    await manager.start();
    await manager.ready({ ids: ['web', 'api'] });
    await failed;
    // Mounted below a path in an Express app: the page finds its JSON and events relative to itself.
    const app = express();
    app.use('/ops/certificates', page);
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops/certificates`;
    return { manager, url };
  }

  async function open(url: string, viewport = { width: 1200, height: 900 }) {
    const context = await browser.newContext({ viewport });
    cleanup.push(() => context.close());
    const tab = await context.newPage();
    const problems: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    tab.on('pageerror', (e) => problems.push(e.message));
    await tab.goto(url);
    await tab.waitForSelector('li[data-id="evil"] .error');
    return { tab, problems };
  }

  it('renders every certificate with its state, serial and timeline; updates after renewNow()', async () => {
    const { manager, url } = await running();
    const { tab, problems } = await open(url);
    expect(await tab.title()).toBe('Certificates <of> prod');
    const rows = await tab.$$eval('li', (items) =>
      items.map((li) => ({
        id: li.dataset.id,
        serial: li.dataset.serial,
        state: li.querySelector('.state')?.getAttribute('data-state'),
        marks: li.querySelectorAll('.timeline .mark').length,
        names: li.querySelector('.names')?.textContent,
      })),
    );
    const status = Object.fromEntries(manager.status().map((s) => [s.id, s]));
    // The certificate that is not ready first.
    expect(rows.map((r) => r.id)).toEqual(['evil', expect.any(String), expect.any(String)]);
    expect(rows.map((r) => r.id).sort()).toEqual(['api', 'evil', 'web']);
    for (const id of ['web', 'api']) {
      expect(rows.find((r) => r.id === id)).toEqual({
        id,
        serial: status[id]!.serial,
        state: 'ready',
        marks: 2, // planned renewal and now
        names: status[id]!.names.join(', '),
      });
    }
    expect(rows.find((r) => r.id === 'evil')).toMatchObject({ serial: '', state: 'missing', marks: 0 });
    expect(await tab.textContent('#summary')).toMatch(/^3 certificates · 1 not ready/);
    await tab.screenshot({ path: join(artefacts, 'desktop.png'), fullPage: true });

    const before = status.web!.serial!;
    await manager.renewNow('web');
    const after = manager.status().find((s) => s.id === 'web')!.serial!;
    expect(after).not.toBe(before);
    // No reload: the event stream (or the poll) brings the new serial.
    await tab.waitForSelector(`li[data-id="web"][data-serial="${after}"]`, { timeout: 15_000 });
    expect(await tab.textContent('li[data-id="web"] .meta')).toContain(`serial ${after}`);
    await tab.screenshot({ path: join(artefacts, 'after-renewal.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it("shows a CA's hostile error text as text; runs under its CSP; fits a phone", async () => {
    const { url } = await running();
    const { tab, problems } = await open(url, { width: 375, height: 740 });
    const error = await tab.textContent('li[data-id="evil"] .error');
    expect(error).toContain('ACME_PROBLEM: CA said: <img src=x onerror="window.__pwned=1"><b>bold</b>');
    expect(await tab.$$('li[data-id="evil"] .error img, li[data-id="evil"] .error b')).toHaveLength(0);
    expect(await tab.evaluate(() => window.__pwned)).toBeUndefined();
    // A script the policy does not allow is refused: the policy is in force, not just sent.
    await tab.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__injected = 1';
      document.body.append(s);
    });
    expect(await tab.evaluate(() => window.__injected)).toBeUndefined();
    expect(problems.some((p) => /Content Security Policy/.test(p))).toBe(true);
    expect(problems.filter((p) => !/Content Security Policy/.test(p))).toEqual([]);
    const width = await tab.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      view: window.innerWidth,
    }));
    expect(width.scroll).toBeLessThanOrEqual(width.view);
    await tab.screenshot({ path: join(artefacts, 'phone.png'), fullPage: true });
  });
});
