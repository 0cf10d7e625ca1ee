/**
 * Setup helpers: create a tls, https or http2 secure server already wired to the manager, so
 * there is nothing to attach by hand. The server is created with certkeeper's SNICallback (yours,
 * if given, answers the names certkeeper does not manage) and, when one is already available, the
 * default certificate; every other option is yours and is kept across swaps.
 */
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { PrivateKey } from '../crypto/keys.js';
import type { AttachOptions, ServerAttachment } from './attachment.js';
import { CONTEXT_OPTION_KEYS } from './server-fields.js';
import { deferredSniCallback } from './sni.js';

export type ManagedServerOptions = Omit<AttachOptions, 'tls'>;

/** What the helpers use of a `CertificateManager` (named here so that server/ never imports manager/). */
export interface ServingManager {
  attach(server: tls.Server, options?: AttachOptions): ServerAttachment;
  status(): readonly { id: string; purpose: 'server' | 'client' }[];
  credentials(id: string): { key: PrivateKey; chainPem: string } | null;
}

function contextOptions(options: object): tls.SecureContextOptions {
  const picked: Record<string, unknown> = {};
  for (const key of [...CONTEXT_OPTION_KEYS, 'ticketKeys'] as const) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) picked[key] = value;
  }
  return picked as tls.SecureContextOptions;
}

function initialCredentials(
  manager: ServingManager,
  attach: ManagedServerOptions,
): { key?: string; cert?: string } {
  const id =
    attach.defaultCertificate ??
    attach.certificates?.[0] ??
    manager.status().find((s) => s.purpose === 'server')?.id;
  const credentials = id ? manager.credentials(id) : null;
  return credentials ? { key: credentials.key.toPem(), cert: credentials.chainPem } : {};
}

function wire<S extends tls.Server>(
  manager: ServingManager,
  make: (options: tls.TlsOptions) => S,
  options: tls.TlsOptions,
  attach: ManagedServerOptions,
): { server: S; attachment: ServerAttachment } {
  const server = make({
    ...initialCredentials(manager, attach),
    ...options,
    // A caller's own SNICallback stays the fallback for names certkeeper does not manage
    // (attach wraps it, as for an existing server).
    SNICallback: options.SNICallback ?? deferredSniCallback(),
  });
  const attachment = manager.attach(server, { ...attach, tls: contextOptions(options) });
  return { server, attachment };
}

export function createTlsServer(
  manager: ServingManager,
  options: tls.TlsOptions = {},
  listener?: (socket: tls.TLSSocket) => void,
  attach: ManagedServerOptions = {},
): tls.Server {
  return wire(manager, (o) => tls.createServer(o, listener), options, attach).server;
}

export function createHttpsServer(
  manager: ServingManager,
  options: https.ServerOptions = {},
  listener?: Parameters<typeof https.createServer>[1],
  attach: ManagedServerOptions = {},
): https.Server {
  return wire(manager, (o) => https.createServer(o, listener), options, attach).server;
}

export function createHttp2SecureServer(
  manager: ServingManager,
  options: http2.SecureServerOptions = {},
  listener?: (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void,
  attach: ManagedServerOptions = {},
): http2.Http2SecureServer {
  return wire(
    manager,
    (o) => http2.createSecureServer(o as http2.SecureServerOptions, listener) as unknown as tls.Server,
    options as tls.TlsOptions,
    attach,
  ).server as unknown as http2.Http2SecureServer;
}
