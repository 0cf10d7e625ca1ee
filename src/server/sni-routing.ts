/**
 * Putting the attachment's SNI handler in front of a server's handshakes. Node keeps a server's
 * SNICallback under an internal symbol read at each connection, so it can be installed on a
 * server created without one (`addContext` could never remove an entry: nodejs/node#34451); a
 * user's own handler is kept as the fallback for names certkeeper does not manage. Servers made by
 * the setup helpers carry `deferredSniCallback`, a placeholder the attachment routes to itself.
 *
 * Both are regular functions: Node calls them with the TLSSocket as `this`, which the TLS-ALPN-01
 * path needs (a socket marked by the ALPN callback gets its challenge context; see alpn.ts).
 */
import type tls from 'node:tls';
import type { Logger } from '../logger.js';
import { alpnChallengeOf } from './alpn.js';

export type SniCallback = (
  servername: string,
  cb: (err: Error | null, ctx?: tls.SecureContext) => void,
) => void;

const SNI_MARK = Symbol.for('certkeeper.sniCallback');

function sniSymbol(server: tls.Server): symbol | undefined {
  return Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback');
}

/**
 * Routes `server`'s SNI to `route` (names `manages` accepts, or every name when the server had no
 * handler of its own). Returns the function that restores the server, or undefined when this Node
 * keeps the handler elsewhere (then only the default certificate is served).
 */
export function installSniRouting(
  server: tls.Server,
  route: SniCallback,
  manages: (servername: string) => boolean,
  logger: Logger,
): (() => void) | undefined {
  const symbol = sniSymbol(server);
  if (!symbol) {
    logger.warn('cannot install SNI routing on this Node version; only the default certificate is served');
    return undefined;
  }
  const fields = server as unknown as Record<symbol, SniCallback | undefined>;
  const previous = fields[symbol];
  const marked = previous as unknown as Record<symbol, unknown> | undefined;
  if (marked?.[SNI_MARK]) {
    // Created by certkeeper's helper: route that placeholder to this attachment.
    marked[SNI_MARK] = route;
    return () => {
      marked[SNI_MARK] = true;
    };
  }
  fields[symbol] = function sni(this: unknown, servername, cb) {
    const challenge = alpnChallengeOf(this);
    if (challenge) return cb(null, challenge);
    if (!previous || manages(servername)) route(servername, cb);
    else previous.call(this, servername, cb);
  };
  return () => {
    fields[symbol] = previous;
  };
}

/**
 * An SNICallback for `tls.createServer` options that forwards to whichever attachment later
 * claims the server (the setup helpers use it so the server is created already routed).
 */
export function deferredSniCallback(): SniCallback {
  const fn = function sni(
    this: unknown,
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ) {
    const challenge = alpnChallengeOf(this);
    if (challenge) return cb(null, challenge);
    const target = (fn as unknown as Record<symbol, unknown>)[SNI_MARK];
    if (typeof target === 'function') (target as SniCallback)(servername, cb);
    else cb(null);
  } as SniCallback;
  (fn as unknown as Record<symbol, unknown>)[SNI_MARK] = true;
  return fn;
}
