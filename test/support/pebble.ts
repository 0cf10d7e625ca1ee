// Pebble 2.4.0 and pebble-challtestsrv as the real ACME peer of the tests: a throwaway CA for
// Pebble's HTTPS listeners, free loopback ports, both processes started and killed per suite.
// Pebble resolves every name through challtestsrv (`-dnsserver`), which answers A queries with
// 127.0.0.1 by default, so any `*.test` name validates against the tests' own loopback servers
// on `httpPort` (HTTP-01) / `tlsPort` (TLS-ALPN-01) with no addA() at all.
//
// When Pebble is not installed, suites wrapped in describePebble skip loudly, except under
// CI=true, where startPebble throws: a skip there would hide an ACME issuer that was never tested.
import 'reflect-metadata';
import { type ChildProcess, spawn } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { describe } from 'vitest';

export interface PebbleOptions {
  /** Port Pebble's VA dials for HTTP-01 (where the test's HTTP server listens). Default: a free port. */
  httpPort?: number;
  /** Port Pebble's VA dials for TLS-ALPN-01 (the test's TLS server). Default: a free port. */
  tlsPort?: number;
  /** Lifetime of issued certificates in seconds (Pebble's default: 5 years). */
  validityPeriodSeconds?: number;
  /** External account binding keys, `{ kid: base64url HMAC key }`; makes EAB required. */
  eab?: Record<string, string>;
  /**
   * Extra environment for Pebble (`PEBBLE_WFE_NONCEREJECT`, `PEBBLE_AUTHZREUSE`,
   * `PEBBLE_CHAIN_LENGTH`, `PEBBLE_ALTERNATE_ROOTS`, …); `undefined` removes a variable, e.g.
   * `{ PEBBLE_VA_NOSLEEP: undefined }` brings back the VA's random sleep of up to 5 s.
   */
  env?: Record<string, string | undefined>;
  /** Fixed listener ports; each one left out is a free loopback port. */
  ports?: { acme?: number; management?: number; dns?: number; challtestsrv?: number };
  /** How long to wait for `/dir` to answer (default 10 s). */
  startTimeoutMs?: number;
  /** The DNS server Pebble resolves through (`host:port`); default challtestsrv's. */
  dnsServer?: string;
}

export interface PebbleCertStatus {
  Status: 'Valid' | 'Revoked';
  Serial: string;
  Certificate: string;
  Reason?: number;
  RevokedAt?: string;
}

export interface ChallTestSrv {
  /** The management API, plain HTTP: `http://127.0.0.1:<port>`. */
  url: string;
  /** `host:port` of its DNS server (UDP and TCP), the one Pebble resolves through. */
  dnsServer: string;
  addA(host: string, ip: string | string[]): Promise<void>;
  clearA(host: string): Promise<void>;
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  logs(): string;
}

export interface Pebble {
  /** `https://127.0.0.1:<port>/dir`. */
  directoryUrl: string;
  /** `https://127.0.0.1:<port>`: roots, intermediates, certificate status. */
  managementUrl: string;
  /** The throwaway CA behind Pebble's own HTTPS listeners (not the CA that issues ACME certificates). */
  caPem: string;
  httpPort: number;
  tlsPort: number;
  /** The temp dir holding the config and Pebble's listener certificate. */
  dir: string;
  /** Pebble's issuing root (PEM); `index` > 0 for PEBBLE_ALTERNATE_ROOTS. New after restart(). */
  roots(index?: number): Promise<string>;
  intermediates(index?: number): Promise<string>;
  /** Status of an issued certificate by serial (hex, any case, leading zeros ignored); null when unknown. */
  certStatus(serialHex: string): Promise<PebbleCertStatus | null>;
  challtestsrv: ChallTestSrv;
  /** A localhost/127.0.0.1 server certificate from the same throwaway CA (for proxies in front of Pebble). */
  issueServerCertificate(): Promise<{ certPem: string; keyPem: string }>;
  /** Kills Pebble only (its ports refuse connections); challtestsrv keeps running. */
  down(): Promise<void>;
  /**
   * Starts Pebble again (killing it first if up) on the same ports and config. Pebble keeps
   * everything in memory: afterwards it has a new root and intermediate and knows no accounts,
   * orders or certificates.
   */
  restart(): Promise<void>;
  /** Kills both processes and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Pebble's output (it logs to stdout) across restarts. */
  logs(): string;
}

// ---------------------------------------------------------------------------------------------
// Presence

function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Whether `pebble` and `pebble-challtestsrv` are on PATH. */
export function pebbleAvailable(): boolean {
  return onPath('pebble') && onPath('pebble-challtestsrv');
}

const MISSING =
  'pebble / pebble-challtestsrv not found on PATH (install with apt-get install -y pebble): real-ACME tests are NOT being run';

/**
 * `describe` for suites that need Pebble. Without Pebble it skips the suite with one loud warning,
 * except under CI=true, where the suite runs and startPebble fails it.
 */
export function describePebble(name: string, fn: () => void): void {
  if (pebbleAvailable() || process.env.CI === 'true') {
    describe(name, fn);
    return;
  }
  console.warn(`\n!!! SKIPPING "${name}": ${MISSING}\n`);
  describe.skip(name, fn);
}

// ---------------------------------------------------------------------------------------------
// Throwaway CA (Pebble only reads PEM files; @peculiar/x509 with Node's WebCrypto, no openssl)

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

interface ThrowawayCa {
  caPem: string;
  issueLocalhost(): Promise<{ certPem: string; keyPem: string }>;
}

async function createThrowawayCa(): Promise<ThrowawayCa> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: 'CN=certkeeper test harness CA',
      keys,
      signingAlgorithm: SIGN,
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 7 * DAY),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  return {
    caPem: ca.toString('pem'),
    async issueLocalhost() {
      const leafKeys = (await webcrypto.subtle.generateKey(EC, true, [
        'sign',
        'verify',
      ])) as webcrypto.CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create(
        {
          subject: 'CN=localhost',
          issuer: ca.subject,
          publicKey: leafKeys.publicKey,
          signingKey: keys.privateKey,
          signingAlgorithm: SIGN,
          notBefore: new Date(now - DAY),
          notAfter: new Date(now + 7 * DAY),
          extensions: [
            new x509.SubjectAlternativeNameExtension([
              { type: 'dns', value: 'localhost' },
              { type: 'ip', value: '127.0.0.1' },
            ]),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
          ],
        },
        webcrypto,
      );
      const keyDer = await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey);
      return { certPem: leaf.toString('pem'), keyPem: pem('PRIVATE KEY', keyDer) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Ports

function bindTcp(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/**
 * `count` distinct free loopback ports (TCP, and UDP too where `udp[i]`). All are held open until
 * every one is picked, so no two coincide; the child binds them a few ms later (a race with other
 * processes remains, which startPebble answers by retrying on "address already in use").
 */
async function freePorts(udp: boolean[]): Promise<number[]> {
  const held: Server[] = [];
  try {
    const ports: number[] = [];
    for (const needsUdp of udp) {
      for (;;) {
        const server = await bindTcp(0);
        held.push(server);
        const { port } = server.address() as { port: number };
        if (!needsUdp || (await udpFree(port))) {
          ports.push(port);
          break;
        }
      }
    }
    return ports;
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let guarded = false;

/** Kills every child still alive (and removes its temp dir) when the test process exits. */
function guardExit(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

// A worker killed with SIGKILL runs no 'exit' handler; setpriv's parent-death signal still takes
// its children down with it.
const SETPRIV = onPath('setpriv');

const LOG_LIMIT = 1 << 20;

class Output {
  #text = '';
  append(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > LOG_LIMIT) this.#text = this.#text.slice(-LOG_LIMIT);
  }
  toString(): string {
    return this.#text;
  }
}

function launch(command: string, args: string[], env: NodeJS.ProcessEnv, output: Output): ChildProcess {
  const [file, argv] = SETPRIV
    ? ['setpriv', ['--pdeathsig', 'SIGKILL', '--', command, ...args]]
    : [command, args];
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => output.append(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => output.append(chunk));
  child.on('error', (err) => output.append(`[spawn ${command}] ${err.message}\n`));
  live.add(child);
  child.once('exit', () => live.delete(child));
  guardExit();
  return child;
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // No state worth a graceful shutdown: Pebble keeps everything in memory.
  child.kill('SIGKILL');
  await exited;
}

function exitedEarly(child: ChildProcess): Promise<string> {
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve(`exited (${signal ?? `code ${code}`})`)),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** Polls until `probe` resolves; rejects when `child` exits first or `ms` pass. */
async function waitFor(probe: () => Promise<unknown>, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let died: string | undefined;
  void exitedEarly(child).then((why) => {
    died = why;
  });
  let last: unknown;
  for (;;) {
    if (died) throw new Error(died);
    try {
      await probe();
      return;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) throw new Error(`not answering after ${ms} ms (${(last as Error)?.message})`);
    await sleep(25);
  }
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------------------

/** Starts challtestsrv and Pebble on loopback and waits until Pebble's directory answers. */
export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  if (!pebbleAvailable()) throw new Error(`startPebble: ${MISSING}`);
  const ca = await createThrowawayCa();
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-pebble-'));
  liveDirs.add(dir);
  try {
    const identity = await ca.issueLocalhost();
    writeFileSync(join(dir, 'ca.pem'), ca.caPem);
    writeFileSync(join(dir, 'server.pem'), identity.certPem);
    writeFileSync(join(dir, 'server.key'), identity.keyPem, { mode: 0o600 });
    // Free ports can be taken by another process between picking and binding: retry then, but
    // only when every port was ours to pick.
    for (let attempt = 1; ; attempt++) {
      try {
        return await launchPebble(options, ca, dir);
      } catch (err) {
        const fixed = options.ports || options.httpPort || options.tlsPort;
        if (!(err as Error).message.includes('address already in use') || fixed || attempt >= 3) throw err;
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
}

async function launchPebble(options: PebbleOptions, ca: ThrowawayCa, dir: string): Promise<Pebble> {
  const given = options.ports ?? {};
  const picked = await freePorts([false, false, true, false, false, false]); // dns: UDP and TCP
  const acme = given.acme ?? picked[0]!;
  const management = given.management ?? picked[1]!;
  const dns = given.dns ?? picked[2]!;
  const mgmt = given.challtestsrv ?? picked[3]!;
  const httpPort = options.httpPort ?? picked[4]!;
  const tlsPort = options.tlsPort ?? picked[5]!;
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acme}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: join(dir, 'server.pem'),
      privateKey: join(dir, 'server.key'),
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.eab !== undefined,
      externalAccountMACKeys: options.eab ?? {},
      ...(options.validityPeriodSeconds !== undefined
        ? { certificateValidityPeriod: options.validityPeriodSeconds }
        : {}),
      domainBlocklist: [],
    },
  };
  const configFile = join(dir, 'pebble-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1' };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }

  const directoryUrl = `https://127.0.0.1:${acme}/dir`;
  const managementUrl = `https://127.0.0.1:${management}`;
  const challUrl = `http://127.0.0.1:${mgmt}`;
  const timeout = options.startTimeoutMs ?? 10_000;
  const pebbleOut = new Output();
  const challOut = new Output();

  // Its own challenge listeners off, so the tests' servers answer on httpPort/tlsPort; no AAAA
  // answers, since Pebble dials an AAAA answer first and nothing listens on ::1.
  const challtestsrv = launch(
    'pebble-challtestsrv',
    [
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv6',
      '',
      '-defaultIPv4',
      '127.0.0.1',
      '-dns01',
      `127.0.0.1:${dns}`,
      '-management',
      `127.0.0.1:${mgmt}`,
    ],
    process.env,
    challOut,
  );
  let pebble: ChildProcess | undefined;
  let stopped = false;

  const startPebbleProcess = async () => {
    const resolver = options.dnsServer ?? `127.0.0.1:${dns}`;
    pebble = launch('pebble', ['-config', configFile, '-dnsserver', resolver], env, pebbleOut);
    try {
      await waitFor(() => get(directoryUrl, ca.caPem), pebble, timeout);
    } catch (err) {
      await kill(pebble);
      throw new Error(
        `Pebble did not serve ${directoryUrl}: ${(err as Error).message}\n${tail(`${pebbleOut}`)}`,
      );
    }
  };

  try {
    // Both at once: Pebble needs no DNS until it validates. challtestsrv answers 404 on "/": any
    // HTTP answer means it is listening.
    const challReady = waitFor(() => fetch(challUrl), challtestsrv, timeout).catch((err: Error) => {
      throw new Error(`pebble-challtestsrv did not start: ${err.message}\n${tail(`${challOut}`)}`);
    });
    const results = await Promise.allSettled([challReady, startPebbleProcess()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await kill(pebble);
    await kill(challtestsrv);
    throw err;
  }

  const managementGet = async (path: string): Promise<{ status: number; body: string }> =>
    get(`${managementUrl}${path}`, ca.caPem);
  const pemAt = async (path: string) => {
    const { status, body } = await managementGet(path);
    if (status !== 200) throw new Error(`Pebble management ${path}: HTTP ${status}`);
    return body;
  };
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${challUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`challtestsrv ${path}: HTTP ${response.status}`);
  };
  // challtestsrv matches TXT names as fully qualified (trailing dot); A names it qualifies itself.
  const fqdn = (host: string) => (host.endsWith('.') ? host : `${host}.`);

  return {
    directoryUrl,
    managementUrl,
    caPem: ca.caPem,
    httpPort,
    tlsPort,
    dir,
    roots: (index = 0) => pemAt(`/roots/${index}`),
    intermediates: (index = 0) => pemAt(`/intermediates/${index}`),
    async certStatus(serialHex) {
      const serial = serialHex
        .toLowerCase()
        .replace(/:/g, '')
        .replace(/^0+(?=.)/, '');
      const { status, body } = await managementGet(`/cert-status-by-serial/${serial}`);
      if (status === 404) return null;
      if (status !== 200) throw new Error(`Pebble cert-status-by-serial/${serial}: HTTP ${status}`);
      return JSON.parse(body) as PebbleCertStatus;
    },
    challtestsrv: {
      url: challUrl,
      dnsServer: `127.0.0.1:${dns}`,
      addA: (host, ip) => post('/add-a', { host: fqdn(host), addresses: [ip].flat() }),
      clearA: (host) => post('/clear-a', { host: fqdn(host) }),
      setTxt: (host, value) => post('/set-txt', { host: fqdn(host), value }),
      clearTxt: (host) => post('/clear-txt', { host: fqdn(host) }),
      logs: () => `${challOut}`,
    },
    issueServerCertificate: () => ca.issueLocalhost(),
    async down() {
      await kill(pebble);
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      await kill(pebble);
      pebbleOut.append('--- certkeeper harness: restarting Pebble ---\n');
      await startPebbleProcess();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all([kill(pebble), kill(challtestsrv)]);
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    },
    logs: () => `${pebbleOut}`,
  };
}
