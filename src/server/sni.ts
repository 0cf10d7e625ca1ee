/**
 * Where a handshake picks a certificate. The SNI name goes through the certificate cache
 * (certificate-cache.ts: name → id → generation, written by the manager) to a SecureContext
 * built once per generation; no SNI or an unknown name gets the default certificate (the
 * server's own context). A hit is Map lookups and nothing else; a certificate not in memory yet
 * is a queued load job the handshake waits for. Nothing here calls the manager.
 *
 * Installing the handler: Node keeps a server's SNICallback under an internal symbol read at each
 * connection, so it can be installed on a server created without one (`addContext` could never
 * remove an entry: nodejs/node#34451); a user's own handler stays the fallback for names
 * certkeeper does not manage. Servers made by the setup helpers carry `deferredSniCallback`, a
 * placeholder the attachment routes to itself. Both are regular functions: Node calls them with
 * the TLSSocket as `this`, which TLS-ALPN-01 needs (a socket marked by the ALPN callback gets its
 * challenge context; see docs/platform.md, "Node TLS").
 */
import type tls from 'node:tls';
import { alpnChallengeOf } from '../challenges/tls-alpn-01/server-hook.js';
import type { DeployableGeneration } from '../deploy/target.js';
import type { Logger } from '../logger.js';
import type { CertificateCache } from './certificate-cache.js';

export type SniCallback = (
  servername: string,
  cb: (err: Error | null, ctx?: tls.SecureContext) => void,
) => void;
type Answer = (err: Error | null, ctx?: tls.SecureContext) => void;

/** How long a handshake waits for the default certificate's first load before going on without it. */
const DEFAULT_LOAD_WAIT_MS = 5_000;
const SNI_MARK = Symbol.for('certkeeper.sniCallback');

/** What the router needs from its attachment. */
export interface SniHost {
  readonly server: tls.Server;
  readonly cache: CertificateCache;
  readonly logger: Logger;
  readonly unknownName: 'default' | 'reject';
  serves(id: string): boolean;
  readonly defaultId: string | undefined;
  /** The fingerprint the server's own context serves, if it is a managed certificate. */
  readonly defaultServed: string | undefined;
  /** The context for `generation` (built once and kept); throws when it cannot be built. */
  contextFor(generation: DeployableGeneration): tls.SecureContext;
}

export class SniRouter {
  readonly #host: SniHost;

  constructor(host: SniHost) {
    this.#host = host;
  }

  /** The SNI handler (looks the name up, then routes). */
  readonly callback: SniCallback = (servername, cb) => this.route(servername, this.resolve(servername), cb);

  /** The managed certificate for `servername`, if this server serves it. */
  resolve(servername: string | undefined): string | undefined {
    const id = this.#host.cache.lookup(servername);
    return id !== undefined && this.#host.serves(id) ? id : undefined;
  }

  /** Answers a handshake for `servername`, which `resolve` mapped to `id`. */
  route(servername: string, id: string | undefined, cb: Answer): void {
    const host = this.#host;
    if (id === undefined) {
      if (host.unknownName === 'reject' && servername) cb(new Error(`no certificate for ${servername}`));
      else this.#serveDefault(cb);
      return;
    }
    const generation = host.cache.current(id);
    if (generation) {
      this.#serve(id, generation, cb);
      return;
    }
    if (!host.cache.loads) {
      cb(null);
      return;
    }
    // Not in memory yet: wait for the load job. Neither outcome may fail the handshake: the
    // default certificate is served instead, and the reason (reported by the manager) is noted.
    host.cache.request(id).then(
      (loaded) => {
        if (loaded) return this.#serve(id, loaded, cb);
        host.logger.debug('no usable certificate yet; serving the default', { id, servername });
        this.#serveDefault(cb);
      },
      (error: unknown) => {
        host.logger.debug('loading a certificate for a handshake failed; serving the default', {
          id,
          servername,
          code: (error as { code?: unknown })?.code,
        });
        this.#serveDefault(cb);
      },
    );
  }

  /**
   * Answers with the default certificate. Not in memory yet (lazy loading: its first load starts
   * at attach), the server's own context has no certificate: the handshake waits for that load
   * (bounded) and is answered with the context it installed.
   */
  #serveDefault(cb: Answer): void {
    const host = this.#host;
    const id = host.defaultId;
    const generation = id === undefined ? undefined : host.cache.current(id);
    if (generation) {
      this.#serve(id!, generation, cb);
      return;
    }
    if (id === undefined || !host.serves(id) || !host.cache.loads) {
      cb(null, ownContext(host.server));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, DEFAULT_LOAD_WAIT_MS, undefined);
    });
    Promise.race([host.cache.request(id), bounded])
      .catch(() => undefined)
      .then((loaded) => {
        clearTimeout(timer);
        if (loaded) this.#serve(id, loaded, cb);
        else cb(null, ownContext(host.server));
      });
  }

  #serve(id: string, generation: DeployableGeneration, cb: Answer): void {
    // The default certificate is the server's own context: nothing to build.
    if (generation.info.fingerprint256 === this.#host.defaultServed) {
      cb(null, ownContext(this.#host.server));
      return;
    }
    try {
      cb(null, this.#host.contextFor(generation));
    } catch (error) {
      this.#host.logger.error('building a TLS context failed', { id, serial: generation.info.serialNumber });
      cb(error as Error);
    }
  }
}

/**
 * The server's own context as it is now. A connection keeps the one the server had when it was
 * accepted, which lacks the default certificate when that was installed after (a lazy first
 * load): answering with the current one, not "the server's own" (`cb(null)`), serves it.
 */
function ownContext(server: tls.Server): tls.SecureContext | undefined {
  return (server as unknown as { _sharedCreds?: tls.SecureContext })._sharedCreds;
}

function sniSymbol(server: tls.Server): symbol | undefined {
  return Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback');
}

/**
 * Routes `server`'s SNI to `router` (the names it resolves, or every name when the server had no
 * handler of its own): one lookup per handshake. Returns the function that restores the server,
 * or undefined when this Node keeps the handler elsewhere (then only the default certificate is
 * served).
 */
export function installSniRouting(
  server: tls.Server,
  router: SniRouter,
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
    // Created by certkeeper's helper: route that placeholder to this router.
    marked[SNI_MARK] = router.callback;
    return () => {
      marked[SNI_MARK] = true;
    };
  }
  fields[symbol] = function sni(this: unknown, servername, cb) {
    const challenge = alpnChallengeOf(this);
    if (challenge) return cb(null, challenge);
    const id = router.resolve(servername);
    if (!previous || id !== undefined) router.route(servername, id, cb);
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
  const fn = function sni(this: unknown, servername: string, cb: Answer) {
    const challenge = alpnChallengeOf(this);
    if (challenge) return cb(null, challenge);
    const target = (fn as unknown as Record<symbol, unknown>)[SNI_MARK];
    if (typeof target === 'function') (target as SniCallback)(servername, cb);
    else cb(null);
  } as SniCallback;
  (fn as unknown as Record<symbol, unknown>)[SNI_MARK] = true;
  return fn;
}
