// The logger option with the loggers people already use: pino, bunyan and winston instances
// receive certkeeper's fields as fields (not lost, not folded into the message), and the default
// logger prints one line per call (logfmt, or JSON with CERTKEEPER_LOG_FORMAT=json).
import { Writable } from 'node:stream';
import bunyan from 'bunyan';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import winston from 'winston';
import { CertkeeperError } from '../src/errors.js';
import { createConsoleLogger, defaultLogger, formatLine, loggerKind, toLogger } from '../src/logger.js';
import { createCertificateManager } from '../src/manager/manager.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { unreachableIssuer } from './support/issuers.js';

/** A stream collecting what a logger writes, one parsed JSON entry per line. */
function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const fields = { id: 'web', code: 'ISSUER_UNAVAILABLE', retryAt: new Date(0).toISOString() };

afterEach(() => {
  delete process.env.CERTKEEPER_LOG_FORMAT;
  delete process.env.CERTKEEPER_LOG_LEVEL;
  vi.restoreAllMocks();
});

describe('toLogger: real pino, bunyan and winston instances receive the fields', () => {
  it('pino: passed as it is, the fields are lost; adapted, they arrive as fields', () => {
    const out = sink();
    const logger = pino({ level: 'debug' }, out.stream);
    expect(loggerKind(logger)).toBe('pino');
    // What certkeeper did before: (message, fields) into pino drops every field.
    (logger as unknown as { warn(m: string, f: object): void }).warn(
      'obtaining a certificate failed',
      fields,
    );
    expect(out.entries()[0]).not.toHaveProperty('id');
    toLogger(logger).warn('obtaining a certificate failed', fields);
    expect(out.entries()[1]).toMatchObject({ level: 40, msg: 'obtaining a certificate failed', ...fields });
  });

  it('pino children keep their bindings and get the fields', () => {
    const out = sink();
    const child = pino({ level: 'debug' }, out.stream).child({ component: 'tls' });
    toLogger(child).debug('renewal window unavailable', { id: 'api' });
    expect(out.entries()[0]).toMatchObject({
      level: 20,
      component: 'tls',
      id: 'api',
      msg: 'renewal window unavailable',
    });
  });

  it('bunyan', () => {
    const out = sink();
    const logger = bunyan.createLogger({ name: 'app', streams: [{ stream: out.stream, level: 'debug' }] });
    expect(loggerKind(logger)).toBe('bunyan');
    toLogger(logger).error('building a TLS context failed', fields);
    expect(out.entries()[0]).toMatchObject({
      name: 'app',
      level: 50,
      msg: 'building a TLS context failed',
      ...fields,
    });
  });

  it('winston, with its own keys (message, level) kept out of the way', () => {
    const out = sink();
    const logger = winston.createLogger({
      level: 'debug',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: out.stream })],
    });
    expect(loggerKind(logger)).toBe('winston');
    toLogger(logger).info('certificate deployed', { ...fields, level: 'x', message: 'y' });
    expect(out.entries()[0]).toMatchObject({
      level: 'info',
      message: 'certificate deployed',
      ...fields,
      level_: 'x',
      message_: 'y',
    });
  });

  it('a manager logging through an adapted pino: its warnings carry id and code as fields', async () => {
    const out = sink();
    const manager = createCertificateManager({
      store: new MemoryStore(),
      issuer: unreachableIssuer,
      certificates: [{ id: 'web', names: ['web.test'] }],
      logger: toLogger(pino({ level: 'debug' }, out.stream)),
      reconcileIntervalMs: 0,
    });
    const failed = new Promise((resolve) => manager.once('renewalFailed', resolve));
    await manager.start();
    await failed;
    await manager.stop();
    const entry = out.entries().find((e) => e.msg === 'obtaining a certificate failed');
    expect(entry).toMatchObject({ level: 40, id: 'web', code: 'ISSUER_UNAVAILABLE' });
    expect(typeof entry?.retryAt).toBe('string');
  });

  it('console becomes the one-line logger; certkeeper-shaped loggers are used as they are', () => {
    const mine = { debug() {}, info() {}, warn() {}, error() {} };
    expect(toLogger(mine)).toBe(mine);
    const adapted = toLogger(console);
    expect(toLogger(adapted)).toBe(adapted);
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    adapted.debug('hello', { id: 'a\nb' });
    expect(write).toHaveBeenCalledTimes(1);
    expect(String(write.mock.calls[0]![0])).toMatch(/level=debug logger=certkeeper msg=hello id="a\\nb"\n$/);
  });

  it('refuses what is not a logger, naming the option', () => {
    expect(() => toLogger({ info() {} })).toThrow(CertkeeperError);
    try {
      toLogger(42);
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'logger' } });
    }
  });
});

describe('the default logger: one line per call', () => {
  it('prints logfmt by default, each entry on one line whatever the fields hold', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    defaultLogger.warn('obtaining a certificate failed', {
      id: 'web',
      error: 'CA said:\n  "no"',
      names: ['a.test', 'b.test'],
      nested: { a: { b: 1 } },
      when: new Date(0),
      failure: new CertkeeperError('RATE_LIMITED', 'too many'),
    });
    expect(write).toHaveBeenCalledTimes(1);
    const line = String(write.mock.calls[0]![0]);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(line).toMatch(
      /^time=\S+ level=warn logger=certkeeper msg="obtaining a certificate failed" id=web error="CA said:\\n {2}\\"no\\"" names="\[\\"a.test\\",\\"b.test\\"\]" nested="{\\"a\\":{\\"b\\":1}}" when=1970-01-01T00:00:00.000Z failure="RATE_LIMITED: too many"\n$/,
    );
  });

  it('prints JSON with CERTKEEPER_LOG_FORMAT=json, and stays quiet below CERTKEEPER_LOG_LEVEL', () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    process.env.CERTKEEPER_LOG_FORMAT = 'json';
    defaultLogger.info('not printed: below the default level');
    defaultLogger.error('stored certificate entry is unusable', { id: 'web', level: 'field named level' });
    process.env.CERTKEEPER_LOG_LEVEL = 'info';
    defaultLogger.info('certificate deployed', { id: 'web' });
    expect(write).toHaveBeenCalledTimes(2);
    const [first, second] = write.mock.calls.map((c) => JSON.parse(String(c[0])));
    expect(first).toMatchObject({
      level: 'error',
      logger: 'certkeeper',
      msg: 'stored certificate entry is unusable',
      id: 'web',
      level_: 'field named level',
    });
    expect(second).toMatchObject({ level: 'info', msg: 'certificate deployed', id: 'web' });
  });

  it('scrubs key material from messages and fields', () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----';
    const line = formatLine('logfmt', 'error', `oops ${pem}`, { detail: pem });
    expect(line).not.toContain('MIGHAgEA');
    expect(line).toContain('[private key redacted]');
  });

  it('createConsoleLogger takes an explicit format, level and destination', () => {
    const lines: string[] = [];
    const logger = createConsoleLogger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
    logger.debug('d', { n: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'debug', msg: 'd', n: 1 });
  });
});
