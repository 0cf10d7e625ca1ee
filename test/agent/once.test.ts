// `certkeeper agent --once` (cron, systemd timers) with the built CLI and a FileStore: it renews
// what is due and exits, and the exit code says what happened: 0 all valid, 1 a renewal failed
// while the served certificate is still valid, 3 a certificate is missing after the run,
// 2 a configuration that does not load.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePki } from '../support/pki.js';
import { assertBuilt, certkeeper } from './support.js';

describe('certkeeper agent --once', () => {
  let dir: string;
  beforeAll(() => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'certkeeper-once-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const once = (config: string, name: string) => {
    writeFileSync(join(dir, name), config);
    const run = certkeeper(['agent', '--once', '--config', name, '--log-format', 'json'], dir);
    return { ...run, report: run.stdout ? JSON.parse(run.stdout) : null };
  };

  it('0: obtains what is missing; 0 again with nothing due', () => {
    const config = 'store: file:./store-a\ncertificates: [{ id: web, names: [web.test] }]\n';
    const first = once(config, 'a.yaml');
    expect(first.code).toBe(0);
    expect(first.report).toEqual({ code: 0, due: ['web'], renewed: ['web'], failed: [], attention: [] });
    for (const line of first.stderr.trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(first.stderr).toContain('"event":"obtained"');
    const second = once(config, 'a.yaml');
    expect(second.code).toBe(0);
    expect(second.report).toEqual({ code: 0, due: [], renewed: [], failed: [], attention: [] });
    expect(second.stderr).toContain('"event":"loaded"');
  });

  it('1: a due renewal failed while the certificate is still valid; 3: a certificate is missing', async () => {
    // Files another tool wrote: a certificate past 2/3 of its lifetime, so due at every run.
    const now = Date.now();
    const pki = await makePki({
      names: ['files.test'],
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 600_000),
    });
    mkdirSync(join(dir, 'live/files'), { recursive: true });
    writeFileSync(join(dir, 'live/files/fullchain.pem'), pki.chainPem);
    writeFileSync(join(dir, 'live/files/privkey.pem'), pki.keyPem);
    const config = `store: file:./store-b
issuers: [{ id: certbot, type: files, chain: "live/{id}/fullchain.pem", key: "live/{id}/privkey.pem" }]
certificates: [{ id: files, names: [files.test] }]
`;
    expect(once(config, 'b.yaml').report).toMatchObject({ code: 0, renewed: ['files'] });
    // Due again, but the files still hold the same certificate: nothing new to serve.
    const again = once(config, 'b.yaml');
    expect(again.code).toBe(1);
    expect(again.report).toEqual({
      code: 1,
      due: ['files'],
      renewed: [],
      failed: [{ id: 'files', code: 'ISSUER_UNAVAILABLE' }],
      attention: [],
    });

    const missing = once(config.replace('store-b', 'store-c').replace('id: files,', 'id: other,'), 'c.yaml');
    expect(missing.code).toBe(3);
    expect(missing.report).toMatchObject({ code: 3, attention: ['other'], failed: [{ id: 'other' }] });
  });

  it('2: a configuration that does not load, naming the setting', () => {
    const run = once('store: file:./s\ncertificates: [{ names: [a.test], purpose: peer }]\n', 'd.yaml');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /d\.yaml option certificates\[0\]\.purpose must be one of server, client \(INVALID_OPTION\)/,
    );
    expect(certkeeper(['agent', '--once', '--config', 'nope.yaml'], dir).code).toBe(2);
    expect(certkeeper(['agent', '--once'], dir).stderr).toMatch(/--config is required/);
  });
});
