// examples/http2.mjs and examples/tls.mjs: each started with its own store, asked over a real
// connection that trusts only the embedded CA's root (from `certkeeper export-root`), and stopped.
import http2 from 'node:http2';
import tls from 'node:tls';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { cleanup, exportRoot, httpsGet, requireBuild, startExample, tempDir } from './support.js';

beforeAll(requireBuild);
afterEach(cleanup);

function h2Get(port: number, ca: string): Promise<{ body: string; alpn: string | false | undefined }> {
  return new Promise((done, fail) => {
    const session = http2.connect(`https://localhost:${port}`, {
      ca,
      host: '127.0.0.1',
      servername: 'localhost',
    });
    session.on('error', fail);
    const req = session.request({ ':path': '/' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('error', fail);
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      done({ body, alpn });
    });
    req.end();
  });
}

it('http2.mjs answers HTTP/2 and HTTP/1.1 clients over TLS from the embedded CA', {
  timeout: 120_000,
}, async () => {
  const store = tempDir('http2');
  const example = startExample('http2.mjs', { PORT: '0', CERTKEEPER_DIR: store });
  const port = Number((await example.waitFor(/listening on https:\/\/localhost:(\d+)\//))[1]);
  const ca = await exportRoot(store);
  expect(await h2Get(port, ca)).toEqual({ body: 'hello over HTTP/2.0\n', alpn: 'h2' });
  const h1 = await httpsGet(port, '/', { ca });
  expect([h1.status, h1.body]).toEqual([200, 'hello over HTTP/1.1\n']);
  expect(await example.stop()).toEqual({ code: 0, signal: null });
});

it('tls.mjs answers each line in upper case over TLS from the embedded CA', {
  timeout: 120_000,
}, async () => {
  const store = tempDir('tls');
  const example = startExample('tls.mjs', { PORT: '0', CERTKEEPER_DIR: store });
  const port = Number((await example.waitFor(/listening on tls:\/\/localhost:(\d+)/))[1]);
  const ca = await exportRoot(store);
  const reply = await new Promise<string>((done, fail) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      socket.write('ping\nhello tls\n');
    });
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      got += chunk;
      if (got.split('\n').length > 2) {
        socket.end();
        done(got);
      }
    });
    socket.on('error', fail);
  });
  expect(reply).toBe('PING\nHELLO TLS\n');
  expect(await example.stop()).toEqual({ code: 0, signal: null });
});
