/**
 * The little HTTP the operations handlers share: a response as data (so Fastify and tests can
 * use it without a socket), written to Node's `ServerResponse` for plain `http` and Express.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A response of the operations handlers, independent of the HTTP framework. */
export interface OpsResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A handler for `http.createServer`, Express (`app.use`) and Connect. */
export interface NodeHandler {
  /** Handles one request; unknown paths go to `next`. */
  // biome-ignore lint/style/useShorthandFunctionType: an interface lets the call signature carry its documentation
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
}

/** What every operations response carries: not cached, not framed, not sniffed. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function json(status: number, value: unknown): OpsResponse {
  return {
    status,
    headers: { ...BASE_HEADERS, 'content-type': 'application/json; charset=utf-8' },
    body: `${JSON.stringify(value)}\n`,
  };
}

export function text(status: number, body: string, extra: Record<string, string> = {}): OpsResponse {
  return {
    status,
    headers: { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', ...extra },
    body,
  };
}

export function methodNotAllowed(): OpsResponse {
  return text(405, 'method not allowed\n', { allow: 'GET, HEAD' });
}

/** The path of a request URL relative to where the handler is mounted (Express strips the mount). */
export function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return '/';
  }
}

export function send(res: ServerResponse, response: OpsResponse, method: string | undefined): void {
  const body = Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
  res.end(method === 'HEAD' ? undefined : body);
}

/** The smallest shape of a Fastify instance and reply the handlers need (fastify is not imported). */
export interface FastifyLike {
  route(options: {
    method: string | string[];
    url: string;
    handler: (request: { method: string; url: string }, reply: FastifyReplyLike) => unknown;
  }): unknown;
}

export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(values: Record<string, string>): FastifyReplyLike;
  send(payload?: unknown): unknown;
}

export function sendFastify(reply: FastifyReplyLike, response: OpsResponse): unknown {
  return reply.code(response.status).headers(response.headers).send(response.body);
}
