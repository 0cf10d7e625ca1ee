/**
 * Proof that a swap took effect: a real TLS handshake to the server's own listening address,
 * reading the certificate it now serves. Only a full handshake counts (no session is offered, so
 * nothing resumes), and the peer is not verified: we compare the served fingerprint with the
 * one we just deployed. Under TLS 1.3 the client side completes before a server that demands a
 * client certificate rejects us; under TLS 1.2 the server rejects us first, so the certificate it
 * presented is read as soon as it arrives. Either way mTLS servers can be probed too.
 *
 * The probe is an orderly client: it ends its connection with close_notify once the handshake is
 * done (dropping it mid-handshake made the server emit a tlsClientError per swap), and a server
 * that requires client certificates, which refuses the probe, does not report that refusal as a
 * client error either: `ProbeTracker` recognises the probe's connection on the server side.
 */

import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { CertkeeperError } from '../errors.js';

export interface ProbeResult {
  fingerprint256: string;
  serial: string;
}

/** Where to connect to reach a listening server from inside the process. */
export function probeTarget(server: tls.Server): { host?: string; port?: number; path?: string } | null {
  const address = server.address();
  if (address === null) return null;
  if (typeof address === 'string') return { path: address };
  const { address: host, port } = address as AddressInfo;
  if (host === '0.0.0.0') return { host: '127.0.0.1', port };
  if (host === '::') return { host: '::1', port };
  return { host, port };
}

const PEER = Symbol('certkeeper.probePeer');
/** How long the server side of a finished probe is still recognised (its close may come later). */
const FORGET_AFTER_MS = 30_000;

function endpoint(address: string | undefined, port: number | undefined): string | undefined {
  return address === undefined || port === undefined ? undefined : `${address}|${port}`;
}

/**
 * Recognises, on a server, the connections of its own live checks. A probe registers its local
 * address and port once connected (before its ClientHello is read, so before any handshake error);
 * the server notes the peer of every connection it accepts while a probe is under way, as the
 * address is gone by the time Node reports an error for a closed socket.
 */
export class ProbeTracker {
  #inFlight = 0;
  readonly #endpoints = new Set<string>();

  /** Called with each raw connection the server accepts. */
  noteConnection(socket: net.Socket): void {
    if (this.#inFlight === 0 || !socket) return;
    const peer = endpoint(socket.remoteAddress, socket.remotePort);
    if (peer) (socket as unknown as Record<symbol, string>)[PEER] = peer;
  }

  /** Whether a server-side TLS socket is one of our probes (Node keeps the raw socket as `_parent`). */
  isProbe(socket: unknown): boolean {
    const raw = (socket as { _parent?: Record<symbol, string | undefined> } | undefined)?._parent;
    const peer = raw?.[PEER];
    return peer !== undefined && this.#endpoints.has(peer);
  }

  /** Runs `probe` with a callback that registers the probe's own endpoint. */
  async track<T>(probe: (register: (socket: net.Socket) => void) => Promise<T>): Promise<T> {
    this.#inFlight++;
    let mine: string | undefined;
    try {
      return await probe((socket) => {
        mine = endpoint(socket.localAddress, socket.localPort);
        if (mine) this.#endpoints.add(mine);
      });
    } finally {
      this.#inFlight--;
      if (mine) {
        const forget = mine;
        setTimeout(() => this.#endpoints.delete(forget), FORGET_AFTER_MS).unref();
      }
    }
  }
}

/** Handshakes with `server` presenting `servername` (omitted for IPs) and reports what it served. */
export function probe(
  server: tls.Server,
  servername: string | undefined,
  timeoutMs = 5_000,
  onConnect?: (socket: net.Socket) => void,
): Promise<ProbeResult> {
  const target = probeTarget(server);
  if (!target) return Promise.reject(new CertkeeperError('LIVE_VERIFY_FAILED', 'server is not listening'));
  return new Promise((resolve, reject) => {
    let settled = false;
    const options: tls.ConnectionOptions & tls.TLSSocketOptions = {
      ...target,
      servername,
      rejectUnauthorized: false,
      // http2 servers without allowHTTP1 want h2; others pick http/1.1 or ignore ALPN.
      ALPNProtocols: ['h2', 'http/1.1'],
      // Only for its callback, which runs once the server's certificate is in (see 'error').
      requestOCSP: true,
    };
    const socket = tls.connect(options);
    if (onConnect) socket.once('connect', () => onConnect(socket));
    const done = (error: Error | null, result?: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        socket.destroy();
        reject(error);
        return;
      }
      // close_notify, then the server closes its side; the handshake's last flight (and TLS 1.3
      // tickets) are read meanwhile. A server that never closes is dropped after the timeout.
      socket.end();
      socket.setTimeout(timeoutMs, () => socket.destroy());
      resolve(result!);
    };
    const timer = setTimeout(
      () => done(new CertkeeperError('LIVE_VERIFY_FAILED', `live check timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const served = (): ProbeResult | null => {
      const peer = socket.getPeerCertificate();
      if (!peer?.fingerprint256) return null;
      return {
        fingerprint256: peer.fingerprint256.replaceAll(':', '').toLowerCase(),
        serial: peer.serialNumber.toLowerCase(),
      };
    };
    // A server that requires client certificates refuses the probe under TLS 1.2 before the
    // handshake completes, but after it presented its certificate: read it here, and accept it
    // below when the handshake then ends with an alert from the server.
    let early: ProbeResult | null = null;
    socket.once('OCSPResponse', () => {
      early = served();
    });
    socket.once('secureConnect', () => {
      const result = served();
      if (!result) done(new CertkeeperError('LIVE_VERIFY_FAILED', 'server presented no certificate'));
      else done(null, result);
    });
    // Errors after the outcome (a TLS 1.3 server refusing the probe once it is done) are expected.
    socket.on('error', (error: Error & { code?: string }) => {
      if (early && /^ERR_SSL_.*ALERT/.test(error.code ?? '')) return done(null, early);
      done(
        new CertkeeperError('LIVE_VERIFY_FAILED', `live check handshake failed: ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
}
