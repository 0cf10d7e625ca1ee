/**
 * HTTP-01 (RFC 8555 §8.3): the CA fetches `http://<name>/.well-known/acme-challenge/<token>` and
 * expects the key authorization. Answers live in the store, so whichever replica the CA's
 * request lands on can answer it; the handler reads the store on every request (the CA's
 * validation attempts, three concurrent ones with Pebble, are the only traffic it sees).
 *
 * An answer is trust: served, it lets whoever ordered that token at a CA pass validation for the
 * fleet's names. It is stored at `layout.http01Answer` (`challenges/http-01/<token>.key`), which
 * stores with encryption keys seal like a private key and refuse in plaintext, so a writer of the
 * store without the keys cannot plant one. Answers at the key of earlier versions (no `.key`) are
 * never read.
 *
 * The handler plugs into any Node HTTP server:
 *   plain http  `http.createServer((req, res) => handler(req, res, () => app(req, res)))`
 *   Express     `app.use(handler)`                       (it calls `next()` for what it does not answer)
 *   Fastify     `fastify.get('/.well-known/acme-challenge/:token', (q, r) => { r.hijack(); handler(q.raw, r.raw) })`
 * and `startHttp01Server` is a standalone listener that answers challenges and redirects
 * everything else to HTTPS.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isCertkeeperError } from '../errors.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type { ChallengeContext, ChallengeSolver, ChallengeTask } from './solver.js';

const PREFIX = '/.well-known/acme-challenge/';
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const ANSWER = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$/;

/** Answers HTTP-01 challenges by writing the key authorization to the store, where `createHttp01Handler` serves it. */
export class Http01Solver implements ChallengeSolver {
  readonly type = 'http-01' as const;

  supports(_identifier: ChallengeTask['identifier'], wildcard: boolean): boolean {
    return !wildcard;
  }

  async present(task: ChallengeTask, context: ChallengeContext): Promise<void> {
    await context.store.put(layout.http01Answer(task.token), task.keyAuthorization);
  }

  async cleanup(task: ChallengeTask, context: ChallengeContext): Promise<void> {
    await context.store.delete(layout.http01Answer(task.token));
  }
}

/** A request handler that answers ACME HTTP-01 challenges from the store (plain `http`, Express, Connect). */
export interface Http01Handler {
  /** Handles one request; a request it does not answer goes to `next` when one is given. */
  (req: http.IncomingMessage, res: http.ServerResponse, next?: (error?: unknown) => void): void;
  /** Whether a request is for an ACME HTTP-01 path (synchronous, cheap). */
  matches(req: http.IncomingMessage): boolean;
}

function tokenOf(req: http.IncomingMessage): string | null {
  const url = req.url ?? '';
  if (!url.startsWith(PREFIX)) return null;
  return url.slice(PREFIX.length).split(/[?#]/)[0] ?? null;
}

/**
 * A request handler answering HTTP-01 validations from the store. Everything it does not answer
 * goes to `next`: other paths, and challenge tokens its store does not hold (or cannot read just
 * now), so several certificate managers, or another ACME client, can share one port-80 listener
 * by chaining their handlers. Without `next`: 404, or 503 when the store cannot be read.
 */
export function createHttp01Handler(store: Store): Http01Handler {
  const handler = ((req, res, next) => {
    const answer = (status: number, body: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const pass = (status = 404) => {
      if (next) next();
      else answer(status, status === 404 ? 'not found' : 'challenge store unavailable');
    };
    const token = tokenOf(req);
    if (token === null || (req.method !== 'GET' && req.method !== 'HEAD') || !TOKEN.test(token)) {
      pass();
      return;
    }
    store.get(layout.http01Answer(token)).then(
      (value) => {
        // Only a key authorization for this very token (`<token>.<thumbprint>`) is an answer.
        const text = value ? Buffer.from(value).toString('utf8') : '';
        if (text.startsWith(`${token}.`) && ANSWER.test(text)) answer(200, text);
        else pass();
      },
      // A value that is not sealed where it must be (planted without the keys) is no answer of
      // ours; a store that cannot be read is unavailable.
      (error) => (isCertkeeperError(error, 'STORE_CORRUPT') ? pass() : pass(503)),
    );
  }) as Http01Handler;
  handler.matches = (req) => tokenOf(req) !== null;
  return handler;
}

/** Options of `startHttp01Server`. */
export interface Http01ServerOptions {
  store: Store;
  /** Default 80. */
  port?: number;
  host?: string;
  /** Redirect non-challenge requests to HTTPS (default true); false answers 404. */
  redirect?: boolean;
  /** Port of the HTTPS server to redirect to (default 443, omitted from the URL). */
  httpsPort?: number;
}

/** A standalone HTTP-01 listener: answers challenges, redirects everything else to HTTPS. */
export async function startHttp01Server(
  options: Http01ServerOptions,
): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  const handler = createHttp01Handler(options.store);
  const httpsPort = options.httpsPort ?? 443;
  const server = http.createServer((req, res) =>
    handler(req, res, () => {
      // A validation for a token nobody here holds: a plain 404, not a redirect to HTTPS.
      const validation = handler.matches(req) && (req.method === 'GET' || req.method === 'HEAD');
      if (options.redirect === false || validation) {
        res.writeHead(404).end();
        return;
      }
      const host = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
      // A Host header is attacker-chosen: only a plain host name or IP literal goes into Location.
      if (!/^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:.]+\]$/.test(host)) {
        res.writeHead(400).end();
        return;
      }
      const port = httpsPort === 443 ? '' : `:${httpsPort}`;
      res.writeHead(301, { Location: `https://${host}${port}${req.url ?? '/'}` }).end();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 80, options.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
