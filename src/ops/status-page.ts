/**
 * The status page as a handler to mount anywhere (plain `http`, Express `app.use('/status', page)`,
 * Fastify `app.register(page.fastify, { prefix: '/status' })`):
 *
 *   GET  ./             the page (./status-page-html.ts)
 *   GET  ./status.json  every certificate (the most urgent first, at most `limit`) with its
 *                       timeline, state, readiness and last error
 *   GET  ./events       server-sent events: `change` after every manager event, so the page
 *                       refreshes at once (it also polls every `refreshMs`)
 *
 * The page shows certificate ids, names, serials and error messages: mount it where only
 * operators reach it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { optionError } from '../errors.js';
import {
  type CertificateHealth,
  type HealthOptions,
  notReadyReason,
  resolveHealthOptions,
} from './health.js';
import {
  BASE_HEADERS,
  type FastifyLike,
  json,
  methodNotAllowed,
  type NodeHandler,
  type OpsResponse,
  pathOf,
  send,
  sendFastify,
  text,
} from './http.js';
import { type ObservedManager, observe } from './observer.js';
import { PAGE_CSP, pageHtml } from './status-page-html.js';

/** Options of `createStatusPage`. */
export interface StatusPageOptions extends Omit<HealthOptions, 'certificates'> {
  /** Shown as the page's heading. Default `certkeeper`. */
  title?: string;
  /** At most this many certificates are listed, the most urgent first (default 500). */
  limit?: number;
  /** How often the page polls besides the event stream, in ms (default 30 s, at least 1 s). */
  refreshMs?: number;
  /** Open event streams at most (default 32); more are refused with 503 and the page polls. */
  maxStreams?: number;
}

/** The status page: HTML, its JSON data and a live event stream. */
export interface StatusPage extends NodeHandler {
  /** The response for a method and path below the mount point; null when not the page's. Not the event stream. */
  respond(method: string, path: string): OpsResponse | null;
  /** A Fastify plugin: `app.register(page.fastify, { prefix: '/status' })`. */
  fastify(instance: FastifyLike): Promise<void>;
  /** Ends the open event streams (before closing the server), and stops listening to the manager. */
  close(): void;
}

/** One certificate as the status page shows it. */
export interface PageCertificate extends Omit<CertificateHealth, 'notBefore' | 'notAfter' | 'nextRenewalAt'> {
  names: string[];
  purpose: string;
  state: string;
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  nextRenewalAt: string | null;
  liveCheck: { ok: boolean; at: string; code: string | null } | null;
}

function integer(option: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min)
    throw optionError(option, `must be an integer of at least ${min}`, 'createStatusPage');
  return value as number;
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function createStatusPage(manager: ObservedManager, options: StatusPageOptions = {}): StatusPage {
  const { title = 'certkeeper', limit: l, refreshMs: r, maxStreams: m, ...health } = options;
  if (typeof title !== 'string' || title.length > 200)
    throw optionError('title', 'must be a string of at most 200 characters', 'createStatusPage');
  const limit = integer('limit', l, 500);
  // Every open page polls at this pace besides its event stream: not a busy loop.
  const refreshMs = integer('refreshMs', r, 30_000, 1_000);
  const maxStreams = integer('maxStreams', m, 32);
  const o = resolveHealthOptions(health);
  const observer = observe(manager, o.now);
  const html = pageHtml(title, refreshMs);

  const statusJson = () => {
    const now = o.now();
    const all = manager.status().map((s): PageCertificate => {
      const reason = notReadyReason(s, now, o.expiryMarginMs, observer.unverified(s));
      const check = observer.liveCheck(s.id);
      return {
        id: s.id,
        names: s.names,
        purpose: s.purpose,
        state: s.state,
        ready: reason === null,
        reason,
        issuer: s.issuer,
        serial: s.serial,
        notBefore: iso(s.notBefore),
        notAfter: iso(s.notAfter),
        remainingMs: s.notAfter ? s.notAfter.getTime() - now : null,
        nextRenewalAt: iso(s.nextRenewalAt),
        renewing: s.renewing,
        failures: s.failures,
        lastError: s.lastError,
        liveCheck: check ? { ok: check.ok, at: check.at.toISOString(), code: check.code } : null,
      };
    });
    const urgency = (c: PageCertificate) => (c.notAfter ? Date.parse(c.notAfter) : Number.NEGATIVE_INFINITY);
    const sorted = all.sort((a, b) => Number(a.ready) - Number(b.ready) || urgency(a) - urgency(b));
    return {
      title,
      now: new Date(now).toISOString(),
      ready: all.every((c) => c.ready),
      total: all.length,
      shown: Math.min(limit, all.length),
      certificates: sorted.slice(0, limit),
    };
  };

  const respond = (method: string, path: string): OpsResponse | null => {
    if (path !== '/' && path !== '' && path !== '/status.json') return null;
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed();
    if (path === '/status.json') return json(200, statusJson());
    return {
      status: 200,
      headers: {
        ...BASE_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': PAGE_CSP,
        'referrer-policy': 'no-referrer',
        'x-frame-options': 'DENY',
      },
      body: html,
    };
  };

  // Server-sent events: one `change` per manager event, to every open stream.
  const streams = new Set<ServerResponse>();
  const unsubscribe = observer.onChange((event, id) => {
    const message = `event: change\ndata: ${JSON.stringify({ event, id })}\n\n`;
    for (const stream of streams) stream.write(message);
  });
  const keepAlive = setInterval(() => {
    for (const stream of streams) stream.write(': keep-alive\n\n');
  }, 25_000);
  keepAlive.unref();
  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET') return send(res, methodNotAllowed(), req.method);
    if (streams.size >= maxStreams) return send(res, text(503, 'too many event streams\n'), req.method);
    res.writeHead(200, {
      ...BASE_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    res.write(`retry: ${refreshMs}\n\n`);
    streams.add(res);
    const done = () => streams.delete(res);
    req.once('close', done);
    res.once('close', done);
  };

  const page = ((req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const path = pathOf(req.url);
    if (path === '/events') return openStream(req, res);
    const response = respond(req.method ?? 'GET', path);
    if (response) send(res, response, req.method);
    else if (next) next();
    else send(res, text(404, 'not found\n'), req.method);
  }) as StatusPage;
  page.respond = respond;
  page.fastify = async (instance: FastifyLike) => {
    for (const url of ['/', '/status.json']) {
      instance.route({
        method: 'GET',
        url,
        handler: (request, reply) => sendFastify(reply, respond(request.method, url)!),
      });
    }
    instance.route({
      method: 'GET',
      url: '/events',
      handler: (request, reply) => {
        const raw = request as unknown as { raw: IncomingMessage };
        const r = reply as unknown as { hijack(): void; raw: ServerResponse };
        r.hijack();
        openStream(raw.raw, r.raw);
      },
    });
  };
  page.close = () => {
    unsubscribe();
    clearInterval(keepAlive);
    for (const stream of streams) stream.end();
    streams.clear();
  };
  return page;
}
