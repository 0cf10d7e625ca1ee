// certkeeper reaches into acme-client below its public API (src/issuers/acme/account.ts): it
// replaces `client.http.request` with its own transport and calls `client.http.getDirectory`,
// `getResourceUrl`, `createSignedBody`, `getJwk`, `getNonce` and `client.api.apiRequest`,
// `updateAccountKey`, `createAccount`, `getAccountUrl`. package.json pins acme-client's exact
// version for that reason; this test fails, naming the internal, when an upgrade changes them.

import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import acme from 'acme-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { makeClient } from '../../../src/issuers/acme/account.js';
import { AcmeTransport } from '../../../src/issuers/acme/transport.js';
import { makePki } from '../../support/pki.js';
import { listen } from '../../support/tls.js';

const CHANGED = 'acme-client internals certkeeper relies on changed (see src/issuers/acme/account.ts)';
const HTTP = ['request', 'getDirectory', 'getResourceUrl', 'createSignedBody', 'getJwk', 'getNonce'];
const API = ['apiRequest', 'updateAccountKey', 'createAccount', 'getAccountUrl'];

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('acme-client internals', () => {
  it('package.json pins the exact acme-client version that is installed', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    const pinned: string = pkg.dependencies['acme-client'];
    expect(pinned, 'acme-client must be pinned to an exact version (its internals are used)').toMatch(
      /^\d+\.\d+\.\d+$/,
    );
    const installed = createRequire(import.meta.url)('acme-client/package.json').version;
    expect(installed, `${CHANGED}: installed acme-client ${installed} is not the pinned ${pinned}`).toBe(
      pinned,
    );
  });

  it('a client has the http and api members certkeeper calls, and the api signs through client.http', async () => {
    const client = new acme.Client({
      directoryUrl: 'https://127.0.0.1:1/directory',
      accountKey: (await PrivateKey.generate()).toPem(),
    }) as unknown as Record<string, Record<string, unknown>>;
    for (const name of HTTP)
      expect(typeof client.http?.[name], `${CHANGED}: client.http.${name}`).toBe('function');
    for (const name of API)
      expect(typeof client.api?.[name], `${CHANGED}: client.api.${name}`).toBe('function');
    expect(client.api?.http, `${CHANGED}: client.api.http is not client.http`).toBe(client.http);
  });

  it('every request of a client goes through the replaced client.http.request (a private CA only it trusts)', async () => {
    const pki = await makePki({ names: ['127.0.0.1'] });
    const seen: { method: string; url: string; body: string }[] = [];
    let nonce = 0;
    const server = https.createServer({ key: pki.keyPem, cert: pki.chainPem }, (req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, body });
        res.setHeader('replay-nonce', `nonce-${++nonce}`);
        res.setHeader('content-type', 'application/json');
        if (req.url === '/directory') {
          res.end(
            JSON.stringify({
              newNonce: `${base}/nonce`,
              newAccount: `${base}/account`,
              keyChange: `${base}/kc`,
            }),
          );
        } else res.end(JSON.stringify({ status: 'valid' }));
      });
    });
    const base = `https://127.0.0.1:${await listen(server)}`;
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    // acme-client's own axios would refuse this server: its CA is trusted only by the transport.
    const transport = new AcmeTransport({ ca: pki.rootPem });
    cleanups.push(() => transport.close());
    const key = await PrivateKey.generate();
    const client = makeClient(transport, {
      directoryUrl: `${base}/directory`,
      key,
      accountUrl: `${base}/acct/1`,
    });

    expect((await client.http.getDirectory()).newAccount, `${CHANGED}: http.getDirectory`).toBe(
      `${base}/account`,
    );
    expect(await client.http.getResourceUrl('keyChange'), `${CHANGED}: http.getResourceUrl`).toBe(
      `${base}/kc`,
    );
    const answer = await client.api.apiRequest(`${base}/authz/7`, null, [200]);
    expect(answer.data.status, `${CHANGED}: api.apiRequest`).toBe('valid');
    const post = seen.find((r) => r.url === '/authz/7');
    expect(post?.method, `${CHANGED}: api.apiRequest did not reach http.request`).toBe('POST');

    // The JWS it sent: signed by the account key, with the kid, the URL and a nonce we handed out.
    const jws = JSON.parse(post!.body) as { protected: string; payload: string; signature: string };
    const header = JSON.parse(Buffer.from(jws.protected, 'base64url').toString());
    expect(header, `${CHANGED}: api.apiRequest's JWS header`).toMatchObject({
      kid: `${base}/acct/1`,
      url: `${base}/authz/7`,
      nonce: expect.stringMatching(/^nonce-\d+$/),
    });
    expect(jws.payload, 'POST-as-GET has an empty payload').toBe('');
    const signed = verify(
      'sha256',
      Buffer.from(`${jws.protected}.${jws.payload}`),
      { key: createPublicKey(key.keyObject), dsaEncoding: 'ieee-p1363' },
      Buffer.from(jws.signature, 'base64url'),
    );
    expect(signed, `${CHANGED}: the JWS is not signed by the account key`).toBe(true);

    expect(client.http.getJwk(), `${CHANGED}: http.getJwk`).toMatchObject({ kty: 'EC', crv: 'P-256' });
    const body = client.http.createSignedBody(`${base}/kc`, { a: 1 }) as Record<string, string>;
    expect(Object.keys(body).sort(), `${CHANGED}: http.createSignedBody`).toEqual([
      'payload',
      'protected',
      'signature',
    ]);
    expect(client.api.getAccountUrl(), `${CHANGED}: api.getAccountUrl`).toBe(`${base}/acct/1`);
    // Nothing went anywhere but the replaced request method (the directory was fetched once).
    expect(seen.filter((r) => r.url === '/directory')).toHaveLength(1);
  });
});
