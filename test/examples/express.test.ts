// examples/express.mjs against Pebble: HTTP-01 answered by the Express app on Pebble's HTTP port,
// the certificate served by the Express app over HTTPS (chain ending at Pebble's root), /readyz,
// and the redirect of everything else on the plain port.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describePebble, type Pebble, startPebble } from '../support/pebble.js';
import { cleanup, httpsGet, requireBuild, startExample, tempDir } from './support.js';

function httpGet(
  port: number,
  path: string,
): Promise<{ status: number | undefined; location: string | undefined }> {
  return new Promise((done, fail) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { host: 'shop.test' }, agent: false }, (res) => {
        res.resume();
        done({ status: res.statusCode, location: res.headers.location });
      })
      .on('error', fail);
  });
}

describePebble('examples/express.mjs', () => {
  let pebble: Pebble;
  beforeAll(async () => {
    requireBuild();
    pebble = await startPebble();
  }, 60_000);
  afterAll(() => pebble?.stop());
  afterEach(cleanup);

  it('gets its certificate by HTTP-01 through Express and serves the app with it', {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir('express');
    const root = await pebble.roots();
    writeFileSync(join(dir, 'root.pem'), root);
    const example = startExample('express.mjs', {
      DOMAIN: 'shop.test',
      ACME_DIRECTORY_URL: pebble.directoryUrl,
      ACME_CA_FILE: join(pebble.dir, 'ca.pem'),
      ACME_ROOT_FILE: join(dir, 'root.pem'),
      HOST: '127.0.0.1',
      PORT: '0',
      HTTP_PORT: String(pebble.httpPort),
      CERTKEEPER_DIR: join(dir, 'store'),
    });
    const [, serial] = await example.waitFor(/obtained shop\.test: serial ([0-9a-f]+) from /);
    const port = Number((await example.waitFor(/listening on https:\/\/shop\.test:(\d+)\//))[1]);

    const home = await httpsGet(port, '/', { ca: root, servername: 'shop.test' });
    expect(home).toMatchObject({ status: 200, body: 'hello from shop.test over https\n' });
    expect(home.serial).toBe(serial!.replace(/^0+/, ''));
    const ready = await httpsGet(port, '/readyz', { ca: root, servername: 'shop.test' });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({
      ready: true,
      certificates: [{ id: 'shop.test', ready: true }],
    });
    // Pebble validated against the plain port; everything else there goes to HTTPS.
    expect(await httpGet(pebble.httpPort, '/cart?x=1')).toEqual({
      status: 301,
      location: 'https://shop.test/cart?x=1',
    });
    expect(await example.stop()).toEqual({ code: 0, signal: null });
  });
});
