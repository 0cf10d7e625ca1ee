// An HTTPS reverse proxy in front of Pebble for what Pebble 2.4.0 lacks (ARI, profiles,
// Retry-After, rate limits) and for faults no real CA produces on demand. It is transparent
// otherwise: bodies, statuses and headers (Replay-Nonce, Location, Link, Retry-After) pass
// through, and every URL a client sees points at the proxy, so a client never leaves it.
//
// Requests are forwarded with the client's Host header: Pebble builds every URL it hands out from
// Host and checks the JWS `url` against it, so signed requests stay valid and come back with proxy
// URLs. Signed payloads are forwarded byte for byte (a rewritten payload would break the JWS
// signature); Pebble 2.4.0 ignores the fields it does not know (`replaces`, `profile`).
import 'reflect-metadata';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import type { Pebble } from './pebble.js';

export type AcmeRoute =
  | 'directory'
  | 'newNonce'
  | 'newAccount'
  | 'newOrder'
  | 'revokeCert'
  | 'keyChange'
  | 'renewalInfo'
  | 'account'
  | 'orders'
  | 'order'
  | 'finalize'
  | 'authorization'
  | 'challenge'
  | 'certificate'
  | 'other';

/** What a faulty request gets instead of the CA's answer. */
export type ProxyFault =
  /** 429 `rateLimited` problem; Retry-After in seconds (default 1; null: no header). */
  | { kind: 'rateLimited'; retryAfterSeconds?: number | null; detail?: string }
  /** 503 `serverInternal` problem; Retry-After in seconds (default 1; null: no header). */
  | { kind: 'unavailable'; retryAfterSeconds?: number | null }
  /** Any problem document, e.g. 400 `badNonce` (it carries a fresh Replay-Nonce like every problem here). */
  | { kind: 'problem'; status: number; type: string; detail?: string; retryAfterSeconds?: number | null }
  /** 200 with an HTML page (a captive portal or a misrouted load balancer). Not forwarded. */
  | { kind: 'html' }
  /** Forwarded: the CA acts, but the client gets its answer cut in half. */
  | { kind: 'truncated' }
  /** Not forwarded: the connection is dropped without an answer. */
  | { kind: 'reset' };

export interface RenewalWindowAnswer {
  start: Date | string;
  end: Date | string;
  explanationURL?: string;
  /** Retry-After of the answer in seconds (default 21600, 6 h). */
  retryAfterSeconds?: number;
}

export interface IssuedCertificateFacts {
  certId: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

export interface Problem {
  status: number;
  type: string;
  detail?: string;
}

export interface ProxyRequestRecord {
  /** Date.now() when the request arrived. */
  at: number;
  method: string;
  path: string;
  route: AcmeRoute;
  /** The status answered (0 while pending, -1 for a dropped connection). */
  status: number;
}

export interface NewOrderRecord {
  at: number;
  identifiers: { type: string; value: string }[];
  replaces?: string;
  profile?: string;
  /** The problem type the proxy answered instead of forwarding, if it did. */
  rejectedWith?: string;
  /** The problem type of the answer (the proxy's or Pebble's, e.g. its random `badNonce`). */
  problem?: string;
  status: number;
}

export interface AcmeProxyOptions {
  upstream: Pick<Pebble, 'directoryUrl' | 'caPem' | 'certStatus' | 'issueServerCertificate'>;
  /** Add `renewalInfo` to the directory and answer ARI requests (default false). */
  renewalInfo?: boolean;
  /** Advertised as `meta.profiles`; `profile` in a newOrder must then be one of these. */
  profiles?: Record<string, string>;
  /**
   * Check `replaces` in newOrders as Boulder does (default false): a certID whose issuer key no
   * certificate from this CA has is 400 malformed, an unknown serial 404 malformed, a certificate
   * already named by an accepted order 409 alreadyReplaced.
   */
  checkReplaces?: boolean;
  /**
   * The window for a certificate Pebble issued and no setWindow() covers; null answers 404.
   * Default: from 2/3 to 3/4 of its lifetime.
   */
  defaultWindow?: (cert: IssuedCertificateFacts) => RenewalWindowAnswer | null;
}

export interface AcmeProxy {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  directoryUrl: string;
  /** Trust for the proxy and for Pebble's own listeners (one throwaway CA). */
  caPem: string;
  /** Every request, in arrival order. */
  requests: ProxyRequestRecord[];
  /** Every newOrder, with the `replaces` and `profile` it carried. */
  orders: NewOrderRecord[];
  /** The certIDs of every ARI request, in order. */
  renewalInfoRequests: string[];
  /** Arrival times (Date.now()) of the requests to a route or matching a path pattern. */
  timesOf(target: AcmeRoute | RegExp): number[];
  /** The next `times` requests to `target` get `fault`. */
  inject(target: AcmeRoute | RegExp, fault: ProxyFault, times?: number): { remaining(): number };
  /** The next `times` newOrders carrying `replaces` get `problem` (default 409 alreadyReplaced). */
  rejectReplaces(problem?: Problem, times?: number): void;
  setRenewalInfo(enabled: boolean): void;
  setProfiles(profiles: Record<string, string> | undefined): void;
  setCheckReplaces(enabled: boolean): void;
  /** The ARI answer for one certID (whether or not Pebble knows it); null removes it. */
  setWindow(certId: string, window: RenewalWindowAnswer | null): void;
  setDefaultWindow(fn: (cert: IssuedCertificateFacts) => RenewalWindowAnswer | null): void;
  /** Forgets records, pending faults and pending rejections; keeps windows and settings. */
  reset(): void;
  close(): Promise<void>;
}

const ACME = 'urn:ietf:params:acme:error:';

// Pebble 2.4.0's resource paths that the directory does not name (wfe.go).
const PEBBLE_PREFIXES: [string, AcmeRoute][] = [
  ['/my-account/', 'account'],
  ['/list-orderz/', 'orders'],
  ['/my-order/', 'order'],
  ['/finalize-order/', 'finalize'],
  ['/authZ/', 'authorization'],
  ['/chalZ/', 'challenge'],
  ['/certZ/', 'certificate'],
];
const RENEWAL_INFO_PATH = '/renewal-info/';
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
];

// ---------------------------------------------------------------------------------------------
// ARI certID, computed from the DER independently of certkeeper's own code

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function tlv(der: Uint8Array, at: number): Tlv {
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  return { tag, start, end: start + length };
}

/** The content bytes of the serialNumber INTEGER, exactly as encoded (a leading 00 kept). */
function serialContent(der: Uint8Array): Uint8Array {
  const certificate = tlv(der, 0);
  const tbs = tlv(der, certificate.start);
  let field = tlv(der, tbs.start);
  if (field.tag === 0xa0) field = tlv(der, field.end); // [0] version
  if (field.tag !== 0x02) throw new Error('certificate: no serialNumber INTEGER');
  return der.subarray(field.start, field.end);
}

function firstCertificate(pem: string): x509.X509Certificate {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!block) throw new Error('no PEM certificate');
  return new x509.X509Certificate(block);
}

/**
 * RFC 9773 certID of the first certificate in `certPem`: base64url(AKI keyIdentifier) "."
 * base64url(serial DER content bytes).
 */
export function certIdOf(certPem: string): string {
  const cert = firstCertificate(certPem);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) throw new Error('certificate has no authority key identifier');
  const serial = serialContent(new Uint8Array(cert.rawData));
  return `${Buffer.from(aki.keyId, 'hex').toString('base64url')}.${Buffer.from(serial).toString('base64url')}`;
}

// ---------------------------------------------------------------------------------------------

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function jwsPayload(body: Buffer): Record<string, unknown> | null {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload?: string };
    const text = Buffer.from(jws.payload ?? '', 'base64url').toString('utf8');
    return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    return null;
  }
}

function problemType(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString('utf8')) as { type?: string }).type;
  } catch {
    return undefined;
  }
}

const iso = (value: Date | string) => new Date(value).toISOString();

export async function startAcmeProxy(options: AcmeProxyOptions): Promise<AcmeProxy> {
  const { upstream } = options;
  const upstreamUrl = new URL(upstream.directoryUrl);
  // No keep-alive upstream: a socket kept from before a Pebble restart would fail the first
  // request after it, and the proxy would report the CA down when it is up.
  const agent = new https.Agent({ ca: upstream.caPem, keepAlive: false });

  const send = (
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer = Buffer.alloc(0),
  ): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const outgoing: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined && !HOP_BY_HOP.includes(name)) outgoing[name] = value;
      }
      if (body.length > 0 || method === 'POST') outgoing['content-length'] = String(body.length);
      const req = https.request(
        { host: upstreamUrl.hostname, port: upstreamUrl.port, method, path, headers: outgoing, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  // What Pebble calls its endpoints, learnt from its directory.
  const upstreamDirectory = JSON.parse(
    (await send('GET', upstreamUrl.pathname, { host: upstreamUrl.host })).body.toString('utf8'),
  ) as Record<string, unknown>;
  const directoryRoutes = new Map<string, AcmeRoute>([[upstreamUrl.pathname, 'directory']]);
  for (const name of ['newNonce', 'newAccount', 'newOrder', 'revokeCert', 'keyChange'] as const) {
    const value = upstreamDirectory[name];
    if (typeof value === 'string') directoryRoutes.set(new URL(value).pathname, name);
  }
  const newNoncePath = new URL(String(upstreamDirectory.newNonce)).pathname;

  const routeOf = (path: string): AcmeRoute => {
    const exact = directoryRoutes.get(path);
    if (exact) return exact;
    if (path.startsWith(RENEWAL_INFO_PATH)) return 'renewalInfo';
    return PEBBLE_PREFIXES.find(([prefix]) => path.startsWith(prefix))?.[1] ?? 'other';
  };

  // --- state
  let renewalInfo = options.renewalInfo ?? false;
  let profiles = options.profiles;
  let checkReplaces = options.checkReplaces ?? false;
  /** certIDs named in `replaces` by an order the CA accepted. */
  const replaced = new Set<string>();
  let defaultWindow =
    options.defaultWindow ??
    ((cert: IssuedCertificateFacts): RenewalWindowAnswer => {
      const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
      const from = (fraction: number) => new Date(cert.notBefore.getTime() + lifetime * fraction);
      return { start: from(2 / 3), end: from(3 / 4) };
    });
  const windows = new Map<string, RenewalWindowAnswer>();
  const requests: ProxyRequestRecord[] = [];
  const orders: NewOrderRecord[] = [];
  const renewalInfoRequests: string[] = [];
  let faults: { target: AcmeRoute | RegExp; fault: ProxyFault; remaining: number }[] = [];
  let replacesRejections: { problem: Problem; remaining: number }[] = [];
  // Pebble 2.4.0 knows no profiles: the proxy echoes the requested one in the order objects.
  const orderProfiles = new Map<string, string>();
  /** The issuer key identifiers (base64url) of the certificates downloaded through the proxy. */
  const issuedAkis = new Set<string>();

  const { certPem, keyPem } = await upstream.issueServerCertificate();
  const server = https.createServer({ cert: certPem, key: keyPem });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const toProxy = (text: string) => text.split(upstreamUrl.origin).join(origin);

  const freshNonce = async (host: string): Promise<string | undefined> => {
    try {
      const answer = await send('HEAD', newNoncePath, { host });
      return answer.headers['replay-nonce'] as string | undefined;
    } catch {
      return undefined;
    }
  };

  const matches = (target: AcmeRoute | RegExp, route: AcmeRoute, path: string) =>
    typeof target === 'string' ? target === route : target.test(path);

  const takeFault = (route: AcmeRoute, path: string): ProxyFault | undefined => {
    const rule = faults.find((f) => f.remaining > 0 && matches(f.target, route, path));
    if (!rule) return undefined;
    rule.remaining--;
    return rule.fault;
  };

  /** One request in flight: what it asked, where to answer, and its record. */
  interface Exchange {
    req: IncomingMessage;
    res: ServerResponse;
    record: ProxyRequestRecord;
    host: string;
    body: Buffer;
  }

  function reply(
    x: Exchange,
    status: number,
    headers: Record<string, string | string[]>,
    body: string | Buffer,
  ) {
    x.record.status = status;
    const payload = typeof body === 'string' ? Buffer.from(body) : body;
    x.res.writeHead(status, { ...headers, 'content-length': String(payload.length) });
    x.res.end(payload);
  }

  async function problem(x: Exchange, p: Problem, retryAfterSeconds?: number | null): Promise<void> {
    // Every ACME response carries a fresh nonce, errors included (RFC 8555 §6.5).
    const nonce = await freshNonce(x.host);
    const headers: Record<string, string> = {
      'content-type': 'application/problem+json',
      link: `<${origin}${upstreamUrl.pathname}>;rel="index"`,
      'cache-control': 'no-store',
    };
    if (nonce) headers['replay-nonce'] = nonce;
    if (retryAfterSeconds != null) headers['retry-after'] = String(retryAfterSeconds);
    reply(x, p.status, headers, JSON.stringify({ type: p.type, detail: p.detail ?? '', status: p.status }));
  }

  const drop = (x: Exchange) => {
    x.record.status = -1;
    x.req.socket.destroy();
  };

  /** Upstream headers for the client: hop-by-hop ones dropped, URLs pointing at the proxy. */
  function proxyHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || HOP_BY_HOP.includes(name) || name === 'content-length') continue;
      out[name] = Array.isArray(value) ? value.map(toProxy) : toProxy(value);
    }
    return out;
  }

  /** Relays an upstream answer with its URLs pointing at the proxy; `edit` may change a JSON success body. */
  function relay(x: Exchange, answer: Upstream, edit?: (json: Record<string, unknown>) => void): void {
    let body: Buffer = answer.body;
    if (/json/.test(String(answer.headers['content-type'])) && body.length > 0) {
      let text = toProxy(body.toString('utf8'));
      if (edit && answer.status < 300) {
        try {
          const json = JSON.parse(text) as Record<string, unknown>;
          edit(json);
          text = JSON.stringify(json, null, 2);
        } catch {}
      }
      body = Buffer.from(text);
    }
    reply(x, answer.status, proxyHeaders(answer.headers), body);
  }

  async function answerFault(x: Exchange, fault: ProxyFault): Promise<void> {
    const retryAfter = (seconds: number | null | undefined) => (seconds === undefined ? 1 : seconds);
    switch (fault.kind) {
      case 'rateLimited': {
        const detail = fault.detail ?? 'too many requests (injected)';
        const p = { status: 429, type: `${ACME}rateLimited`, detail };
        return problem(x, p, retryAfter(fault.retryAfterSeconds));
      }
      case 'unavailable': {
        const p = { status: 503, type: `${ACME}serverInternal`, detail: 'service unavailable (injected)' };
        return problem(x, p, retryAfter(fault.retryAfterSeconds));
      }
      case 'problem':
        return problem(x, fault, fault.retryAfterSeconds);
      case 'html':
        return reply(
          x,
          200,
          { 'content-type': 'text/html' },
          '<html><body><h1>502 Bad Gateway</h1></body></html>',
        );
      case 'truncated': {
        const answer = await send(x.record.method, x.req.url ?? '/', x.req.headers, x.body);
        const text = Buffer.from(toProxy(answer.body.toString('utf8')));
        return reply(x, answer.status, proxyHeaders(answer.headers), text.subarray(0, text.length >> 1));
      }
      case 'reset':
        return drop(x);
    }
  }

  async function answerRenewalInfo(x: Exchange): Promise<void> {
    const notFound = (detail: string) => problem(x, { status: 404, type: `${ACME}malformed`, detail });
    if (!renewalInfo) return notFound('this CA has no renewalInfo');
    if (x.record.method !== 'GET')
      return problem(x, { status: 405, type: `${ACME}malformed`, detail: 'GET only' });
    const certId = x.record.path.slice(RENEWAL_INFO_PATH.length);
    renewalInfoRequests.push(certId);
    const parts = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(certId);
    if (!parts) return problem(x, { status: 400, type: `${ACME}malformed`, detail: 'malformed certID' });
    let window = windows.get(certId) ?? null;
    if (!window) {
      // Like a real CA, answer only for a certificate it issued, identified by issuer key and serial.
      const serialHex = Buffer.from(parts[2]!, 'base64url').toString('hex');
      const status = await upstream.certStatus(serialHex).catch(() => undefined);
      if (status === undefined)
        return problem(x, {
          status: 500,
          type: `${ACME}serverInternal`,
          detail: 'certificate lookup failed',
        });
      if (!status || certIdOf(status.Certificate) !== certId) return notFound(`no certificate ${certId}`);
      const cert = firstCertificate(status.Certificate);
      window = defaultWindow({ certId, serialHex, notBefore: cert.notBefore, notAfter: cert.notAfter });
      if (!window) return notFound(`no window for ${certId}`);
    }
    const body = {
      suggestedWindow: { start: iso(window.start), end: iso(window.end) },
      ...(window.explanationURL ? { explanationURL: window.explanationURL } : {}),
    };
    const retryAfter = String(window.retryAfterSeconds ?? 21_600);
    reply(x, 200, { 'content-type': 'application/json', 'retry-after': retryAfter }, JSON.stringify(body));
  }

  /** Boulder's checks of `replaces` (wfe2), in its words. */
  async function screenReplaces(certId: string): Promise<Problem | undefined> {
    const [aki, serial] = certId.split('.');
    const serialHex = Buffer.from(serial ?? '', 'base64url').toString('hex');
    const status = await upstream.certStatus(serialHex).catch(() => null);
    const issuerKeys = new Set(issuedAkis);
    if (status) issuerKeys.add(certIdOf(status.Certificate).split('.')[0]!);
    if (!issuerKeys.has(aki ?? '')) {
      const detail = 'path contained an Authority Key Identifier that did not match a known issuer';
      return { status: 400, type: `${ACME}malformed`, detail };
    }
    if (!status || certIdOf(status.Certificate) !== certId) {
      const detail = `request included \`replaces\` field, but no current certificate with serial "${serialHex}" exists`;
      return { status: 404, type: `${ACME}malformed`, detail };
    }
    if (replaced.has(certId)) {
      const detail = `cannot indicate an order replaces certificate with serial "${serialHex}", which already has a replacement order`;
      return { status: 409, type: `${ACME}alreadyReplaced`, detail };
    }
    return undefined;
  }

  /** Records a newOrder; answers it (and returns true) when the proxy rejects it itself. */
  async function screenNewOrder(x: Exchange, order: NewOrderRecord): Promise<boolean> {
    const payload = jwsPayload(x.body) ?? {};
    order.identifiers = (payload.identifiers as NewOrderRecord['identifiers']) ?? [];
    if (typeof payload.replaces === 'string') order.replaces = payload.replaces;
    if (typeof payload.profile === 'string') order.profile = payload.profile;
    orders.push(order);
    let rejection: Problem | undefined;
    const rule = order.replaces ? replacesRejections.find((r) => r.remaining > 0) : undefined;
    if (rule) {
      rule.remaining--;
      rejection = rule.problem;
    } else if (order.profile !== undefined && profiles && !(order.profile in profiles)) {
      rejection = { status: 400, type: `${ACME}invalidProfile`, detail: `unknown profile ${order.profile}` };
    } else if (order.replaces && checkReplaces) {
      rejection = await screenReplaces(order.replaces);
    }
    if (!rejection) return false;
    order.rejectedWith = rejection.type;
    order.problem = rejection.type;
    order.status = rejection.status;
    await problem(x, rejection);
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routeOf(path);
    const record: ProxyRequestRecord = { at: Date.now(), method, path, route, status: 0 };
    requests.push(record);
    const x: Exchange = { req, res, record, body, host: req.headers.host ?? new URL(origin).host };

    const fault = takeFault(route, path);
    if (fault) return answerFault(x, fault);
    if (route === 'renewalInfo') return answerRenewalInfo(x);
    let order: NewOrderRecord | undefined;
    if (route === 'newOrder' && method === 'POST') {
      order = { at: record.at, identifiers: [], status: 0 };
      if (await screenNewOrder(x, order)) return;
    }

    let answer: Upstream;
    try {
      answer = await send(method, req.url ?? '/', req.headers, body);
    } catch {
      // Pebble is down: the client sees what it would see without a proxy, a dead connection.
      return drop(x);
    }

    if (route === 'directory' && answer.status === 200) {
      return relay(x, answer, (dir) => {
        if (renewalInfo) dir.renewalInfo = `${origin}${RENEWAL_INFO_PATH.slice(0, -1)}`;
        if (profiles) dir.meta = { ...(dir.meta as object), profiles };
      });
    }
    // Orders, their finalize answers and their polls carry the profile they were asked with.
    const orderId = (route === 'newOrder' ? (answer.headers.location ?? '') : path).split('/').pop()!;
    if (route === 'certificate' && answer.status === 200) {
      try {
        issuedAkis.add(certIdOf(answer.body.toString('utf8')).split('.')[0]!);
      } catch {}
    }
    if (order) {
      order.status = answer.status;
      if (answer.status === 201 && order.replaces) replaced.add(order.replaces);
      if (answer.status >= 400) order.problem = problemType(answer.body);
      if (order.profile !== undefined && answer.headers.location) orderProfiles.set(orderId, order.profile);
    }
    const profile = ['newOrder', 'order', 'finalize'].includes(route)
      ? orderProfiles.get(orderId)
      : undefined;
    if (profile === undefined) return relay(x, answer);
    relay(x, answer, (json) => {
      json.profile = profile;
    });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`acme-proxy: ${err.message}`);
    });
  });

  return {
    url: origin,
    directoryUrl: `${origin}${upstreamUrl.pathname}`,
    caPem: upstream.caPem,
    requests,
    orders,
    renewalInfoRequests,
    timesOf: (target) => requests.filter((r) => matches(target, r.route, r.path)).map((r) => r.at),
    inject(target, fault, times = 1) {
      const rule = { target, fault, remaining: times };
      faults.push(rule);
      return { remaining: () => rule.remaining };
    },
    rejectReplaces(
      p = { status: 409, type: `${ACME}alreadyReplaced`, detail: 'already replaced' },
      times = 1,
    ) {
      replacesRejections.push({ problem: p, remaining: times });
    },
    setRenewalInfo(enabled) {
      renewalInfo = enabled;
    },
    setProfiles(next) {
      profiles = next;
    },
    setCheckReplaces(enabled) {
      checkReplaces = enabled;
    },
    setWindow(certId, window) {
      if (window) windows.set(certId, window);
      else windows.delete(certId);
    },
    setDefaultWindow(fn) {
      defaultWindow = fn;
    },
    reset() {
      requests.length = 0;
      orders.length = 0;
      renewalInfoRequests.length = 0;
      faults = [];
      replacesRejections = [];
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
    },
  };
}
