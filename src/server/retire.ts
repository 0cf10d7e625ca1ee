/**
 * Retiring connections that carry an identity we no longer stand behind.
 *
 * `setSecureContext` and a new SNI context change what *new* handshakes get; a connection that
 * was made with a certificate since revoked, or a client verified under a CA since removed from
 * the trust store, lives on for as long as its keep-alive does. This closes them, each the way
 * its protocol allows without failing a request in flight:
 *
 * - HTTP/2: GOAWAY (`session.close()`): streams already open finish, the client opens new ones on
 *   a new connection;
 * - HTTP/1.1: an idle keep-alive connection is ended now; a busy one answers its current request
 *   with `Connection: close` (or, when its headers are already out, is ended when it finishes);
 * - plain TLS: the socket is ended (a TLS close_notify then FIN) — the application protocol on top
 *   has to cope, as it would with any server restart.
 *
 * Whatever is still open after `boundMs` is destroyed: a response that never ends cannot hold an
 * identity alive past the bound.
 */

import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import type { Logger } from '../logger.js';

/** One live TLS connection, as a retirement predicate sees it. */
export interface TrackedConnection {
  readonly socket: tls.TLSSocket;
  /** SHA-256 fingerprint (lowercase hex, no colons) of the certificate this server presented on it. */
  servedFingerprint(): string | null;
  /** The client's verified certificate chain (mTLS), leaf first; empty without one. */
  peerChain(): tls.DetailedPeerCertificate[];
}

export interface RetireOptions {
  /** Connections still open this long after `retire` are destroyed. Default 10 s. */
  boundMs?: number;
}

export interface RetireResult {
  /** Connections that matched. */
  matched: number;
  /** Of those, destroyed at the bound rather than closed gracefully. */
  forced: number;
}

export interface ConnectionTracker {
  /** Live connections right now. */
  readonly size: number;
  /** Closes every live connection `match` selects; resolves once all of them are closed. */
  retire(match: (connection: TrackedConnection) => boolean, options?: RetireOptions): Promise<RetireResult>;
  /** Stops tracking (connections are left alone). Idempotent. */
  close(): void;
}

type AnyTlsServer = tls.Server | https.Server | Http2SecureServer;

interface Entry {
  connection: TrackedConnection;
  session?: ServerHttp2Session;
  /** HTTP/1.1 responses in flight on this socket. */
  responses: Set<ServerResponse>;
  closed: Promise<void>;
}

const peerOf = (socket: { remoteAddress?: string; remotePort?: number }) =>
  `${socket.remoteAddress} ${socket.remotePort}`;

const fingerprintHex = (value: string | undefined) =>
  value ? value.replaceAll(':', '').toLowerCase() : null;

/** Tracks the TLS connections of `server` from now on, so they can be retired later. */
export function trackConnections(server: AnyTlsServer): ConnectionTracker {
  const entries = new Map<tls.TLSSocket, Entry>();
  const isHttp1 = server instanceof https.Server;

  const onConnection = (socket: tls.TLSSocket) => {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    entries.set(socket, {
      session: sessions.get(peerOf(socket)),
      connection: {
        socket,
        servedFingerprint: () =>
          fingerprintHex((socket.getCertificate() as tls.PeerCertificate | null)?.fingerprint256),
        peerChain: () => peerChain(socket),
      },
      responses: new Set(),
      closed,
    });
    void closed.then(() => entries.delete(socket));
  };
  // The HTTP/2 server makes its session in its own 'secureConnection' listener, before ours runs,
  // and `session.socket` is a proxy, not that socket: sessions wait here, by the peer's address.
  const sessions = new Map<string, ServerHttp2Session>();
  const onSession = (session: ServerHttp2Session) => {
    const peer = peerOf(session.socket);
    sessions.set(peer, session);
    session.once('close', () => sessions.delete(peer));
  };
  const onRequest = (request: IncomingMessage, response: ServerResponse) => {
    const entry = entries.get(request.socket as tls.TLSSocket);
    if (!entry || entry.session) return;
    entry.responses.add(response);
    response.once('close', () => entry.responses.delete(response));
  };
  server.on('secureConnection', onConnection);
  server.on('session', onSession);
  if (isHttp1) server.on('request', onRequest);

  return {
    get size() {
      return entries.size;
    },
    async retire(match, options = {}) {
      const chosen = [...entries.values()].filter((e) => match(e.connection));
      for (const entry of chosen) retireOne(entry, isHttp1);
      let forced = 0;
      const boundMs = options.boundMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, boundMs);
      });
      await Promise.race([Promise.all(chosen.map((e) => e.closed)), bound]);
      clearTimeout(timer);
      for (const entry of chosen) {
        if (entry.connection.socket.destroyed) continue;
        forced++;
        entry.session?.destroy();
        entry.connection.socket.destroy();
      }
      await Promise.all(chosen.map((e) => e.closed));
      return { matched: chosen.length, forced };
    },
    close() {
      server.off('secureConnection', onConnection);
      server.off('session', onSession);
      server.off('request', onRequest);
    },
  };
}

function retireOne(entry: Entry, isHttp1: boolean): void {
  const { socket } = entry.connection;
  if (entry.session) {
    // GOAWAY: open streams complete, new ones go to a new connection; closes when they are done.
    entry.session.close();
    return;
  }
  if (isHttp1 && entry.responses.size > 0) {
    for (const response of entry.responses) {
      if (!response.headersSent) {
        // Node answers with `Connection: close` and ends the socket after this response.
        response.shouldKeepAlive = false;
      } else {
        response.once('finish', () => socket.end());
      }
    }
    return;
  }
  socket.end();
}

function peerChain(socket: tls.TLSSocket): tls.DetailedPeerCertificate[] {
  const chain: tls.DetailedPeerCertificate[] = [];
  let cert = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  while (cert?.raw && chain.length < 10) {
    chain.push(cert);
    if (!cert.issuerCertificate || cert.issuerCertificate === cert) break;
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * After a trust change: closes the connections whose client certificate was verified under a CA
 * that is not among `anchors` (PEM) any more. Connections without a client certificate are left.
 */
export async function retireUntrusted(
  tracker: ConnectionTracker,
  anchors: readonly string[],
  boundMs: number | undefined,
  logger: Logger,
): Promise<void> {
  const trusted = new Set(anchors.map((pem) => new X509Certificate(pem).fingerprint256));
  const result = await tracker.retire(
    (c) => {
      const chain = c.peerChain();
      return chain.length > 0 && !chain.some((cert) => trusted.has(cert.fingerprint256));
    },
    boundMs === undefined ? {} : { boundMs },
  );
  if (result.matched > 0)
    logger.info('connections of clients verified under a CA no longer trusted retired', { ...result });
}
