/**
 * Setup helpers: create a tls, https or http2 secure server already wired to the manager, so
 * there is nothing to attach by hand. The server is created with certkeeper's SNICallback (yours,
 * if given, answers the names certkeeper does not manage) and, when one is already available, the
 * default certificate; every other option is yours and is kept across swaps.
 */
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { CertificateManager } from '../manager/manager.js';
import { type AttachOptions, CONTEXT_OPTION_KEYS, type ServerAttachment } from './attachment.js';
import { deferredSniCallback } from './sni-routing.js';

export type ManagedServerOptions = Omit<AttachOptions, 'tls'>;

function contextOptions(options: object): tls.SecureContextOptions {
  const picked: Record<string, unknown> = {};
  for (const key of [...CONTEXT_OPTION_KEYS, 'ticketKeys'] as const) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) picked[key] = value;
  }
  return picked as tls.SecureContextOptions;
}

function initialCredentials(
  manager: CertificateManager,
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
  manager: CertificateManager,
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
  manager: CertificateManager,
  options: tls.TlsOptions = {},
  listener?: (socket: tls.TLSSocket) => void,
  attach: ManagedServerOptions = {},
): tls.Server {
  return wire(manager, (o) => tls.createServer(o, listener), options, attach).server;
}

export function createHttpsServer(
  manager: CertificateManager,
  options: https.ServerOptions = {},
  listener?: Parameters<typeof https.createServer>[1],
  attach: ManagedServerOptions = {},
): https.Server {
  return wire(manager, (o) => https.createServer(o, listener), options, attach).server;
}

export function createHttp2SecureServer(
  manager: CertificateManager,
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
