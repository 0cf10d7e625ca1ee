/**
 * `/healthz` and `/readyz` over HTTP, for orchestrators and load balancers, from plain `http`,
 * Express (`app.use(handler)`) and Fastify (`app.register(handler.fastify)`):
 *
 *   GET /healthz   200 {"status":"ok"}: the process answers
 *   GET /readyz    200 or 503 {"ready":…,"certificates":[{"id","ready","reason",…}]}
 *
 * Bodies name certificate ids, reasons, serials and error codes (never error messages, which
 * may carry a CA's words); `details: false` leaves only the verdict, for a port others can reach.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { optionError } from '../errors.js';
import { assess, type HealthOptions, type HealthReport, resolveHealthOptions } from './health.js';
import {
  type FastifyLike,
  json,
  methodNotAllowed,
  type NodeHandler,
  type OpsResponse,
  pathOf,
  send,
  sendFastify,
} from './http.js';
import { type ObservedManager, observe } from './observer.js';

/** Options of `createHealthHandler`. */
export interface HealthHandlerOptions extends HealthOptions {
  /** Default `/healthz`. */
  livePath?: string;
  /** Default `/readyz`. */
  readyPath?: string;
  /** Certificate ids, reasons, serials and error codes in `/readyz` bodies. Default true. */
  details?: boolean;
}

/** Liveness and readiness endpoints for plain `http`, Express, Connect and Fastify. */
export interface HealthHandler extends NodeHandler {
  /** The response for a method and path, or null when the path is not one of the handler's. */
  respond(method: string, path: string): OpsResponse | null;
  /** A Fastify plugin registering both paths: `app.register(handler.fastify, { prefix })`. */
  fastify(instance: FastifyLike): Promise<void>;
}

function readyBody(report: HealthReport, details: boolean) {
  if (!details) return { ready: report.ready };
  return {
    ready: report.ready,
    checkedAt: report.checkedAt.toISOString(),
    certificates: report.certificates.map((c) => ({
      id: c.id,
      ready: c.ready,
      reason: c.reason,
      serial: c.serial,
      notAfter: c.notAfter?.toISOString() ?? null,
      renewing: c.renewing,
      failures: c.failures,
      lastError: c.lastError?.code ?? null,
    })),
  };
}

function checkPath(option: string, value: string): string {
  if (typeof value !== 'string' || !value.startsWith('/'))
    throw optionError(option, 'must be a path starting with /', 'createHealthHandler');
  return value;
}

export function createHealthHandler(
  manager: ObservedManager,
  options: HealthHandlerOptions = {},
): HealthHandler {
  const { livePath = '/healthz', readyPath = '/readyz', details = true, ...rest } = options;
  checkPath('livePath', livePath);
  checkPath('readyPath', readyPath);
  const resolved = resolveHealthOptions(rest);
  // Seen from now on: a live check failing at the first renewal is known to /readyz.
  observe(manager, resolved.now);

  const respond = (method: string, path: string): OpsResponse | null => {
    if (path !== livePath && path !== readyPath) return null;
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed();
    if (path === livePath) return json(200, { status: 'ok' });
    const report = assess(manager, resolved);
    return json(report.ready ? 200 : 503, readyBody(report, details));
  };

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const response = respond(req.method ?? 'GET', pathOf(req.url));
    if (response) send(res, response, req.method);
    else if (next) next();
    else send(res, json(404, { error: 'not found' }), req.method);
  }) as HealthHandler;
  handler.respond = respond;
  handler.fastify = async (instance: FastifyLike) => {
    for (const url of [livePath, readyPath]) {
      instance.route({
        method: 'GET',
        url,
        handler: (request, reply) => sendFastify(reply, respond(request.method, url)!),
      });
    }
  };
  return handler;
}
