// The generic reload actions against real processes and a real HTTP server: what counts as
// failure, what the error carries (scrubbed output), and the validation of their options.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PrivateKey } from '../../../src/crypto/keys.js';
import type { ReloadContext } from '../../../src/deploy/reload/action.js';
import { commandReload } from '../../../src/deploy/reload/command.js';
import { httpReload } from '../../../src/deploy/reload/http.js';
import { signalReload } from '../../../src/deploy/reload/signal.js';
import { removeTempDirs, tempDir } from '../../support/peers/process.js';

afterEach(removeTempDirs);

const context = (): ReloadContext => ({
  id: 'web',
  fingerprint256: 'ab'.repeat(32),
  paths: { fullchain: '/certs/web/fullchain.pem', privkey: '/certs/web/privkey.pem' },
  versionPaths: {},
  signal: new AbortController().signal,
});

describe('commandReload', () => {
  it('runs argv without a shell, with its env and the set paths substituted', async () => {
    const out = join(tempDir('cmd'), 'out');
    const action = commandReload({
      argv: [
        '/bin/sh',
        '-c',
        'printf "%s %s %s" "$1" "$2" "$GREETING" > "$3"',
        'sh',
        '{fullchain}',
        '{id}',
        out,
      ],
      env: { GREETING: 'hi' },
    });
    await action.run(context());
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(out, 'utf8')).toBe('/certs/web/fullchain.pem web hi');
  });

  it('a non-zero exit is DEPLOY_FAILED with the output, and key material in it is scrubbed', async () => {
    const key = (await PrivateKey.generate()).toPem();
    const action = commandReload({
      argv: ['/bin/sh', '-c', `echo "config broken"; printf '%s' "$KEY" >&2; exit 3`],
      env: { KEY: key },
    });
    const error = await action.run(context()).catch((e) => e);
    expect(error).toMatchObject({ code: 'DEPLOY_FAILED', details: { exitCode: 3 } });
    expect(error.message).toContain('exited with 3');
    expect(error.message).toContain('config broken');
    expect(error.message).not.toContain('BEGIN PRIVATE KEY');
    expect(JSON.stringify(error.details)).not.toContain(key.split('\n')[1]);
  });

  it('a command past its time limit is killed and DEPLOY_FAILED', async () => {
    const action = commandReload({ argv: ['/bin/sleep', '30'], timeoutMs: 200 });
    await expect(action.run(context())).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      details: { timedOut: true },
    });
  });

  it('a program that does not exist is DEPLOY_FAILED', async () => {
    await expect(commandReload({ argv: ['/nonexistent/reload'] }).run(context())).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      message: expect.stringContaining('could not start'),
    });
  });

  it('refuses bad options at construction', () => {
    expect(() => commandReload({ argv: [] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => commandReload({ argv: ['x'], timeoutMs: 0 })).toThrow(
      expect.objectContaining({ details: { option: 'timeoutMs' } }),
    );
  });
});

describe('signalReload', () => {
  it('signals the pid named by a pidfile read at each reload', async () => {
    const dir = tempDir('sig');
    const child = spawn(
      '/bin/sh',
      ['-c', 'trap "echo got-hup; exit 0" HUP; while true; do sleep 0.05; done'],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(join(dir, 'x.pid'), `${child.pid}\n`);
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await signalReload({ pidFile: join(dir, 'x.pid') }).run(context());
    await exited;
    expect(output).toContain('got-hup');
  });

  it('a missing pidfile, or a pid nobody has, is DEPLOY_FAILED', async () => {
    const dir = tempDir('sig');
    await expect(signalReload({ pidFile: join(dir, 'none.pid') }).run(context())).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
    });
    writeFileSync(join(dir, 'stale.pid'), '4194000\n');
    await expect(signalReload({ pidFile: join(dir, 'stale.pid') }).run(context())).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
    });
    expect(() => signalReload({})).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => signalReload({ pid: 10, signal: 'SIGNOPE' as NodeJS.Signals })).toThrow(
      expect.objectContaining({ details: { option: 'signal' } }),
    );
  });
});

describe('httpReload', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  async function serve(status: number, body: string) {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(status).end(body);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as { port: number }).port}/reload?token=s3cret`,
      seen,
    };
  }

  it('a 2xx answer is success; the request is sent as configured', async () => {
    const { url, seen } = await serve(204, '');
    await httpReload({ url, method: 'PUT' }).run(context());
    expect(seen).toEqual(['PUT /reload?token=s3cret']);
  });

  it('any other status is DEPLOY_FAILED with the body; the query (credentials) is not in the message', async () => {
    const { url } = await serve(500, 'reload failed: bad cert');
    const error = await httpReload({ url })
      .run(context())
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'DEPLOY_FAILED', details: { status: 500 } });
    expect(error.message).toContain('reload failed: bad cert');
    expect(error.message).not.toContain('s3cret');
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => httpReload({ url: 'file:///etc/passwd' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
