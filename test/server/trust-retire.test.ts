// A trust change retires the connections of clients verified under a CA no longer trusted:
// kept-alive HTTP/1.1 connections of a client under the removed CA are closed, those of a client
// under a CA still trusted stay open and keep working.
import https from 'node:https';
import { afterEach, expect, it } from 'vitest';
import { createHttpsServer } from '../../src/server/create-server.js';
import { TrustStore } from '../../src/trust/trust-store.js';
import { makePki } from '../support/pki.js';
import { MutableSource } from '../trust/support.js';
import { cleanup, onCleanup, serve, startManager } from './harness.js';

afterEach(cleanup);

it('closes the kept-alive connections of a client whose CA left the bundle, and only those', async () => {
  const f = await startManager([{ id: 'web', names: ['localhost', '127.0.0.1'] }]);
  const removed = await makePki({ names: ['removed.test'], extKeyUsage: ['clientAuth'] });
  const kept = await makePki({ names: ['kept.test'], extKeyUsage: ['clientAuth'] });
  const source = new MutableSource('clients', [removed.rootPem, kept.rootPem]);
  const trust = new TrustStore({ sources: [source] });
  await trust.start();
  onCleanup(() => trust.stop());
  const server = createHttpsServer(f.manager, {}, (_req, res) => res.end('ok'), {
    clientAuth: { trust, retireBoundMs: 2_000 },
  });
  server.keepAliveTimeout = 60_000;
  const port = await serve(server);
  const agent = (pki: typeof kept) =>
    new https.Agent({ keepAlive: true, key: pki.keyPem, cert: pki.chainPem, ca: f.root });
  const removedAgent = agent(removed);
  const keptAgent = agent(kept);
  onCleanup(() => {
    removedAgent.destroy();
    keptAgent.destroy();
  });
  const get = (a: https.Agent) =>
    new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, servername: 'localhost', agent: a }, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  expect(await get(removedAgent)).toBe('ok');
  expect(await get(keptAgent)).toBe('ok');
  const [removedSocket] = Object.values(removedAgent.freeSockets).flat();
  const [keptSocket] = Object.values(keptAgent.freeSockets).flat();
  const closed = new Promise<void>((resolve) => removedSocket!.once('close', () => resolve()));

  source.pems = [kept.rootPem];
  await trust.refresh();
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('not retired')), 8_000)),
  ]);
  expect(keptSocket!.destroyed).toBe(false);
  expect(await get(keptAgent)).toBe('ok');
  expect(Object.values(keptAgent.freeSockets).flat()[0]).toBe(keptSocket);
});
